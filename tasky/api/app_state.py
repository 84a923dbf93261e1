"""The application's ``state``: Starlette's ``State``, read without an exception per attribute.

Starlette's ``State`` keeps its values in a dict of its own behind ``__getattr__``. CPython 3.11
calls ``__getattr__`` only after the ordinary lookup has failed, and that failure formats an
``AttributeError`` ("'State' object has no attribute 'engine'") that is then thrown away: every
submit paid one for ``request.app.state.engine`` (about 2,000 instructions in
``PyErr_Format`` alone, callgrind). Here the dict Starlette writes to is the instance's own
``__dict__``, so a read finds the value at once; Starlette's code (set, get, delete, ``[]``)
works on it unchanged, and a name never set still raises ``AttributeError``.
"""

from __future__ import annotations

from starlette.datastructures import State


class AppState(State):
    def __init__(self) -> None:
        # State.__init__ keeps the dict it is given as the attribute ``_state``, so __dict__
        # holds that one name beside the values set.
        super().__init__(self.__dict__)
