"""One module per schema revision (a package so the files ship with an installed dsimport)."""
