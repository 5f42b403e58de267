"""``dsimport up``: the whole stack on one machine (emulator, Redis, worker, beat, Flower, jobs page) as child
processes, started in order and stopped together."""
