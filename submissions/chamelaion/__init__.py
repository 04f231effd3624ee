"""The Chamelaion HTTP client: the only code that talks to the Chamelaion API (contract:
shared/chamelaion-api.md). It imports nothing from Django: base URL, key, timeouts and user agent are
passed in (submissions.apikey.clients joins them to the deployment's settings)."""

from submissions.chamelaion.client import LIST_PAGE_LIMIT, USER_AGENT, ChamelaionClient
from submissions.chamelaion.downloads import (
    Downloaded,
    DownloadFailed,
    DownloadInterrupted,
    OutputLinkExpired,
    OutputNotVideo,
    OutputTooLarge,
)
from submissions.chamelaion.multipart import MultipartStream
from submissions.chamelaion.replies import (
    BadRequest,
    ChamelaionError,
    LipsyncRequest,
    MalformedReply,
    NotFound,
    QuotaExhausted,
    RateLimited,
    RequestPage,
    ServerError,
    Unauthorized,
    Unreachable,
    UnusableId,
    request_id_of,
)

__all__ = [
    "LIST_PAGE_LIMIT",
    "USER_AGENT",
    "BadRequest",
    "ChamelaionClient",
    "ChamelaionError",
    "DownloadFailed",
    "DownloadInterrupted",
    "Downloaded",
    "LipsyncRequest",
    "MalformedReply",
    "MultipartStream",
    "NotFound",
    "OutputLinkExpired",
    "OutputNotVideo",
    "OutputTooLarge",
    "QuotaExhausted",
    "RateLimited",
    "RequestPage",
    "ServerError",
    "Unauthorized",
    "Unreachable",
    "UnusableId",
    "request_id_of",
]
