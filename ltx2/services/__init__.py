"""Use cases: what the routes do, without HTTP. Routes call services; services call the store.

Services raise `ltx2.domain.errors.Problem` for a refused request; the API answers it as problem+json.
"""
