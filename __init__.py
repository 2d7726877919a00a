"""mgpt: role agents that turn a one-line idea into working software.

Importing this package is cheap on purpose: no model SDK, torch or transformers is
imported until the code that needs it runs.
"""

__version__ = "0.1.0"

# Old module paths (before the 0.2 layout) stay importable for one release, with a warning.
from mgpt import _aliases

_aliases.install()
del _aliases

__all__ = ["__version__"]
