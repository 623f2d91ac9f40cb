"""Errors of sign-in, API credentials and organisation management (see core.errors)."""

from core.errors import ApplicationError


class AccountsError(ApplicationError):
    code = "accounts_error"
    status = 400


# --- Authentication: 401 means "who are you?", answered with a code saying what was wrong -----------
class NotAuthenticated(AccountsError):
    code = "not_authenticated"
    status = 401


class InvalidCredentials(AccountsError):
    code = "invalid_credentials"
    status = 401


class InvalidOtp(AccountsError):
    code = "invalid_otp"
    status = 401


class LockedOut(AccountsError):
    code = "locked_out"
    status = 429


class TooManyFailures(AccountsError):
    """The client's address sent too many bad credentials in this window (accounts.failures)."""

    code = "too_many_failures"
    status = 429

    @property
    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.extra.get("retry_after", 60))}


class RateLimiterUnavailable(AccountsError):
    """A credential failed and the failure counters cannot be reached: refused unaudited (fail closed)."""

    code = "rate_limiter_unavailable"
    status = 503


class MalformedAuthorization(AccountsError):
    code = "malformed_authorization"
    status = 401


class TokenInvalid(AccountsError):
    """Forged, wrongly signed, for another audience or issuer, or of an unknown key."""

    code = "token_invalid"
    status = 401


class TokenExpired(AccountsError):
    code = "token_expired"
    status = 401


class TokenRevoked(AccountsError):
    code = "token_revoked"
    status = 401


class RefreshTokenInvalid(AccountsError):
    code = "refresh_token_invalid"
    status = 401


class RefreshTokenReused(AccountsError):
    """A refresh token came back after it was rotated: its family is revoked."""

    code = "refresh_token_reused"
    status = 401


class ApiKeyInvalid(AccountsError):
    code = "api_key_invalid"
    status = 401


class ApiKeyRevoked(AccountsError):
    code = "api_key_revoked"
    status = 401


class ApiKeyIpNotAllowed(AccountsError):
    code = "ip_not_allowed"
    status = 403


class InvalidApiKeyInput(AccountsError):
    code = "invalid_api_key_input"
    status = 400


# --- Authorisation -----------------------------------------------------------------------------------
class InsufficientScope(AccountsError):
    code = "insufficient_scope"
    status = 403


class OrganisationNotFound(AccountsError):
    """No such organisation, or the user is not in it (indistinguishable on purpose)."""

    code = "organisation_not_found"
    status = 404


class NotOrganisationManager(AccountsError):
    code = "not_organisation_manager"
    status = 403


class NotReportReader(AccountsError):
    """The member's role does not read the organisation's compliance reports (Traders and Viewers)."""

    code = "not_report_reader"
    status = 403


class ApiKeyScopeNotAllowed(AccountsError):
    """A trade-scope key for a user who may trade nowhere (a Compliance member and nothing else)."""

    code = "api_key_scope_not_allowed"
    status = 403


class OwnerProtected(AccountsError):
    """The Owner cannot be demoted or removed (ownership moves only by the Owner's own transfer)."""

    code = "owner_protected"
    status = 403


class MemberNotFound(AccountsError):
    code = "member_not_found"
    status = 404


class InvalidRole(AccountsError):
    code = "invalid_role"
    status = 400


class GrantNotAllowed(AccountsError):
    code = "grant_not_allowed"
    status = 400


class ApiKeyNotFound(AccountsError):
    code = "api_key_not_found"
    status = 404


class OtpRequired(AccountsError):
    """Signed in with a password only: the second factor is still missing."""

    code = "otp_required"
    status = 401
