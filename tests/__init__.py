"""The project's own tests: a package, so that `tests.fixtures` is this folder's even after
IPython (imported by TFMA) puts a `tests` package of its own on sys.path."""
