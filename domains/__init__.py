"""The worlds the teams act on: a retail store (:mod:`mgpt.domains.retail`), and later a
movie catalogue or a documentation corpus. A domain is plain software -- data, the rules of
the service and the tools that reach it, and a way to grade what was done to it -- with no
model calls of its own: roles take a domain's tools and act through them, evaluations grade
the state the domain is left in."""
