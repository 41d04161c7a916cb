"""Flask-AuthFlow: JWT bearer authentication for Flask APIs.

Auth0 tokens (RS256, verified with the tenant's JWK Set) in production, and locally
issued HS256 tokens (``flask user-jwts``) in development.
"""

from .config import ConfigurationError
from .decorators import current_token, requires_auth, requires_role, requires_scope
from .errors import AuthError
from .extension import AuthFlow, authenticate_request
from .token import Token

__all__ = [
    "AuthError",
    "AuthFlow",
    "ConfigurationError",
    "Token",
    "authenticate_request",
    "current_token",
    "requires_auth",
    "requires_role",
    "requires_scope",
]
__version__ = "0.1.0"
