"""Domains are the worlds the teams act on: a movie catalogue with its ratings, a retail
store, a documentation corpus. Each is plain software -- data, its splits and metrics, and
learned models over it -- with no LLM calls, so the roles above can use it as a tool and a
benchmark can measure it on its own."""
