"""stowpair: dcm4chee-style STOW-RS export engine and a strict stowrsd emulator."""

__version__ = "0.1.0"
