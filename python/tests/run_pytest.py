"""Runs pytest on the given arguments; exits 77 (ctest's SKIP_RETURN_CODE) when pytest, numpy or
an xxhash with XXH3-128 is missing, so a machine without them skips the Python tests instead of
failing them."""

import importlib
import sys

REQUIRED = {"pytest": None, "numpy": None, "xxhash": "xxh3_128"}


def main() -> int:
    missing = []
    for module, attribute in REQUIRED.items():
        try:
            m = importlib.import_module(module)
        except ImportError:
            missing.append(module)
            continue
        if attribute and not hasattr(m, attribute):
            missing.append(f"{module}.{attribute}")
    if missing:
        print(f"skipped: {sys.executable} lacks {', '.join(missing)}")
        return 77
    import pytest

    # No .pytest_cache in the source tree.
    return pytest.main(["-p", "no:cacheprovider", *sys.argv[1:]])


if __name__ == "__main__":
    sys.exit(main())
