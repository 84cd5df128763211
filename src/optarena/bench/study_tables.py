"""Schema versions 2 and 3 of the results store: the tables of :mod:`optarena.study`.

A study (its space, method, options, seed, pruner), its finished trials (one row each, written
when the trial ends), the intermediate values the trials reported (version 2), and for every
trial asked how many results the method had been told before (version 3: a resume replays
asks and tells in their original interleaving). Kept apart from :mod:`.store` so that module
stays about runs; :data:`.store.MIGRATIONS` applies them.
"""

from __future__ import annotations

import sqlite3

__all__ = ["v2_studies", "v3_study_asks"]

_TABLES = (
    """
    CREATE TABLE studies (
        study TEXT PRIMARY KEY,            -- the study's name
        space TEXT NOT NULL,               -- the Space as JSON (optarena.space serial format)
        method TEXT NOT NULL, options TEXT NOT NULL,   -- method name, its options as JSON
        seed INTEGER, in_flight INTEGER NOT NULL, pruner TEXT,   -- pruner as JSON or NULL
        created REAL NOT NULL              -- unix time
    )
    """,
    """
    CREATE TABLE trials (
        study TEXT NOT NULL, number INTEGER NOT NULL,   -- order in which it was asked, from 0
        params TEXT NOT NULL,              -- the configuration dict as JSON (native values)
        status TEXT NOT NULL,              -- 'complete' | 'pruned' | 'failed'
        value REAL,                        -- value (complete), last report (pruned), else NULL
        seconds REAL, error TEXT,          -- wall seconds; exception type and message if failed
        told INTEGER NOT NULL,             -- order in which it was told to the method
        started REAL, finished REAL,       -- unix times
        PRIMARY KEY (study, number)
    )
    """,
    """
    CREATE TABLE trial_reports (
        study TEXT NOT NULL, number INTEGER NOT NULL, step INTEGER NOT NULL, value REAL,
        PRIMARY KEY (study, number, step)
    )
    """,
)


def v2_studies(conn: sqlite3.Connection) -> None:
    """Version 2: studies, their trials and the trials' reports (optarena.study)."""
    for sql in _TABLES:
        conn.execute(sql)


def v3_study_asks(conn: sqlite3.Connection) -> None:
    """Version 3: for each trial asked, the number of results told to the method before."""
    conn.execute(
        """
        CREATE TABLE study_asks (
            study TEXT NOT NULL, number INTEGER NOT NULL,
            tells INTEGER NOT NULL,            -- trials told to the method before it was asked
            PRIMARY KEY (study, number)
        )
        """
    )
