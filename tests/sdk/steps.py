"""The step runner both SDK round trips share: one PASS/FAIL line a step, then "N passed, M failed"."""
import sys
import traceback


class Skip(Exception):
    """A step could not run because an earlier step it depends on failed."""


def check(cond, msg):
    if not cond:
        raise AssertionError(msg)


def run_steps(steps):
    """Runs (key, title, fn) steps in order; returns the process exit code."""
    passed = failed = 0
    for key, title, fn in steps:
        try:
            info = fn()
            passed += 1
            print(f"PASS {key}: {title} -- {info}", flush=True)
        except Skip as e:
            failed += 1
            print(f"FAIL {key}: {title} -- skipped: {e}", flush=True)
        except Exception as e:  # noqa: BLE001
            failed += 1
            print(f"FAIL {key}: {title} -- {type(e).__name__}: {e}", flush=True)
            traceback.print_exc(file=sys.stdout)
    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 else 1
