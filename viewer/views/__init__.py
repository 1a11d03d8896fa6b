"""One module per dashboard page; each exposes a page class with ``title`` and ``panel()``."""
