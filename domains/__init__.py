"""The worlds the teams act on: a retail store (:mod:`mgpt.domains.retail`), a movie
catalogue with its ratings (:mod:`mgpt.domains.movielens`) and a documentation corpus (the
Python docs, :mod:`mgpt.domains.pydocs`). A domain is plain software -- data, the rules of
the service and the tools that reach it, its splits and metrics, learned models over it, and
a way to grade what was done to it -- with no model calls of its own: roles take a domain's
tools and act through them, evaluations grade the state the domain is left in."""
