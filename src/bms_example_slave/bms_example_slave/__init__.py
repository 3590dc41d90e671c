"""An example slave node written from docs/standard/slave.md alone."""
