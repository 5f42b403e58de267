"""A seeded, randomized fault campaign against the whole service.

Each seed draws a plan (:mod:`.plan`): requests as stream messages (duplicated, out of order), schedules with the
source items they pick up (:mod:`.schedule_plan`), and faults at random seconds: answers lost after the server
acted, slow answers, 429 storms, vanished tasks, UNKNOWN statuses, crowded task lists, SIGKILLed and paused
processes, Redis and PostgreSQL restarts, a skewed worker clock, failing and slow schedule reads. The campaign
(:mod:`.campaign`, :mod:`.schedule_run`) plays it against real workers, beats and the emulator; the checker
(:mod:`.checker`, :mod:`.schedule_checker`) judges the end state without the code under test.
``python -m tests.faultsim --seeds 1-300`` runs many; the CI set is in ``test_faultsim.py``.
"""
