"""The one exception type for mistakes a user can fix: its message is a single line that says what to do."""


class UserError(Exception):
    """Bad input or a missing prerequisite; the CLI and notebooks print it as one line, without a traceback."""


def show_user_errors_briefly() -> None:
    """In IPython, print a UserError as its one-line message instead of a traceback (and still fail the cell)."""
    try:
        from IPython import get_ipython
    except ImportError:
        return
    ip = get_ipython()
    if ip is None:
        return

    def handler(shell, etype, value, tb, tb_offset=None):
        stb = [f"UserError: {value}"]
        shell._showtraceback(etype, value, stb)  # a one-line "traceback": the cell still fails, with its message
        return stb

    ip.set_custom_exc((UserError,), handler)
