"""bontheory: theory and simulation of Best-of-N (BoN) inference-time alignment in JAX.

This module only re-exports the public API of the subpackages (each lists its names in ``__all__``).
"""

__version__ = "0.1.0"

from bontheory import alternatives, exact, mc, policies, rewards, vbon  # noqa: E402
from bontheory.exact import *  # noqa: E402,F401,F403
from bontheory.mc import *  # noqa: E402,F401,F403
from bontheory.policies import *  # noqa: E402,F401,F403
from bontheory.rewards import *  # noqa: E402,F401,F403
from bontheory.vbon import *  # noqa: E402,F401,F403
from bontheory.alternatives import *  # noqa: E402,F401,F403

__all__ = [
    "__version__",
    *exact.__all__,
    *policies.__all__,
    *rewards.__all__,
    *mc.__all__,
    *vbon.__all__,
    *alternatives.__all__,
]
