"""Who is calling: principals (token name, role, allowed workers) and their powers."""

from tasky.auth.principal import ANONYMOUS, Principal, Role, principal_of, set_principal

__all__ = ["ANONYMOUS", "Principal", "Role", "principal_of", "set_principal"]
