"""Compatibility shims: the only place stowpair may touch another library's private names."""
