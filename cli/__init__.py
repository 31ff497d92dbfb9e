"""graphgen's command line (installed as `graphgen_cli`): thin click wrappers over the library."""
