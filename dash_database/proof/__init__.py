"""The proof of the README's Guarantees under load, faults and hostile timing.

``python -m dash_database.proof`` serves a small Dash app (``_app.py``) under
``gunicorn -w 4`` on SQLite, Redis and PostgreSQL; drives hundreds of simulated browsers
from several client processes, each sending real Dash callback requests with its signed
session cookie (``_clients.py``); kills a worker, stops and restarts the server or fills the
disk during the load (``_run.py``, ``_disk.py``); reads every session back and prints what
was acknowledged, lost, read across sessions, counted and recovered (``_report.py``).

It is a tool, run from a clone (where it starts its own Redis and PostgreSQL with
``tests/launcher.py``) or against servers given by URL; ``import dash_database`` never
imports it. It needs gunicorn (extra ``[proof]``).
"""

#: The plain id of the session that holds the shared counters (one per phase of the proof).
SHARED = "proof-shared"
