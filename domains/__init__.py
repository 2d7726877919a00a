"""Domains: the worlds teams act on — plain software, no model calls. Each lives in a room
of its own (:mod:`~mgpt.domains.pydocs`: the Python documentation as a corpus)."""
