"""The one error hierarchy of bingeo; every error has a stable ``code``."""

from __future__ import annotations


class BinGeoError(Exception):
    """Base of every error bingeo reports to a user."""

    code = "bingeo_error"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class InvalidInput(BinGeoError):
    """Input that cannot be used as it is (file, geometry, CSV, parameter)."""

    code = "invalid_input"


class InvalidGeometry(InvalidInput):
    """A geometry that is empty, not polygonal, unrepairable or outside Belgium."""

    code = "invalid_geometry"


class ContactDetailsInPublicText(InvalidInput):
    """A public text (a network's "how to join") holding an e-mail address or phone number."""

    code = "contact_details_in_public_text"


class MessageTooLong(InvalidInput):
    """An alert's message or headline longer than its channel carries."""

    code = "message_too_long"


class UnknownCRS(InvalidInput):
    """A coordinate reference system bingeo does not accept, or none where one is needed."""

    code = "unknown_crs"


class NotFound(BinGeoError):
    """A requested object does not exist."""

    code = "not_found"


class Conflict(BinGeoError):
    """A write based on a stale version, or a duplicate key."""

    code = "conflict"


class NetworkHasPeople(Conflict):
    """Deleting a network would remove its members and contacts."""

    code = "network_has_people"


class IllegalTransition(Conflict):
    """A lifecycle step that is not allowed from the current state."""

    code = "illegal_transition"


class PreconditionRequired(BinGeoError):
    """A change that does not say which version it changes."""

    code = "precondition_required"


class NotAuthenticated(BinGeoError):
    """No valid credentials; ``audited`` when the refusal is in the audit trail already."""

    code = "not_authenticated"

    def __init__(self, detail: str, *, audited: bool = False) -> None:
        super().__init__(detail)
        self.audited = audited


class Forbidden(BinGeoError):
    """Valid credentials, but outside the caller's role or scope."""

    code = "forbidden"


class PayloadTooLarge(InvalidInput):
    """An upload above the configured limit."""

    code = "payload_too_large"


class DatabaseUnavailable(BinGeoError):
    """The database cannot be reached, or the embedded cluster cannot be started."""

    code = "database_unavailable"


class DatabaseReadOnly(DatabaseUnavailable):
    """The database accepts no writes (a read-only server, replica or database setting)."""

    code = "database_read_only"


class DatabaseFull(DatabaseUnavailable):
    """The database server ran out of disk space."""

    code = "database_full"


class TooManyAttempts(BinGeoError):
    """Too many failed logins for a name or from a client: wait ``retry_after_s`` seconds."""

    code = "too_many_attempts"

    def __init__(self, detail: str, retry_after_s: int) -> None:
        super().__init__(detail)
        self.retry_after_s = retry_after_s


class DownloadFailed(BinGeoError):
    """A download that could not be completed (HTTP error, timeout, broken connection, too big)."""

    code = "download_failed"


class ChecksumMismatch(DownloadFailed):
    """A downloaded file whose SHA-256 is not the one expected; it is not kept."""

    code = "checksum_mismatch"
