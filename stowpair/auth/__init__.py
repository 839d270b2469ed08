"""OAuth 2.0 for stowpair: access tokens for exporters, JWT validation for receivers.

* :mod:`stowpair.auth.tokens`: :class:`~stowpair.auth.tokens.TokenSource`, one cached,
  single-flight access token per client, refreshed ahead of expiry;
* :mod:`stowpair.auth.oauth`: the token request (RFC 6749 §4.4 client credentials,
  §4.3 password) over treq;
* :mod:`stowpair.auth.jwt_validator`: access-token validation (signature, ``exp``,
  ``nbf``, ``iss``, ``aud``, scope) for any resource that accepts Bearer tokens;
* :mod:`stowpair.auth.jwks`: signing keys from a JWKS file or URL.

Nothing here knows the configuration loader, the queue or the exporter: callers pass
plain values, callables that reveal secrets, an HTTP client and a clock.
"""
