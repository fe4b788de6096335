"""The Label Studio client: connection with errors a researcher understands, the token from the environment or a
0600 file, and never shown whole."""

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from annotator.errors import LingualoopError
from core.files import write_secret
from db.settings import masked, secret_from_env

TOKEN_ENV = "LINGUALOOP_LABELSTUDIO_TOKEN"
TIMEOUT_SECONDS = 60


class LabelStudioError(LingualoopError):
    """Label Studio could not be reached, refused us, or answered something unexpected."""


def token_file(data_dir: Path) -> Path:
    return data_dir / "labelstudio" / "token"


def save_token(data_dir: Path, token: str) -> Path:
    """Store the token readable by its owner only (0600), never in the database."""
    path = token_file(data_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_secret(path, token)
    return path


def load_token(data_dir: Path) -> str:
    token = secret_from_env(TOKEN_ENV)
    if not token and token_file(data_dir).exists():  # written by `labelstudio connect`, checked to be 0600
        token = secret_from_env("TOKEN", {"TOKEN_FILE": str(token_file(data_dir))})
    if not token:
        raise LabelStudioError(
            "No Label Studio token: run `lingualoop labelstudio connect --url URL --token TOKEN`, or set "
            f"{TOKEN_ENV} (or {TOKEN_ENV}_FILE, a file only you can read)."
        )
    return token


def connect(url: str, token: str) -> Any:
    """A checked client: the server answers and accepts the token."""
    from label_studio_sdk import LabelStudio
    from label_studio_sdk.core.api_error import ApiError

    client = LabelStudio(base_url=url.rstrip("/"), api_key=token, timeout=TIMEOUT_SECONDS)  # type: ignore[no-untyped-call]
    try:
        client.users.whoami()
    except ApiError as error:
        if error.status_code in (401, 403):
            raise LabelStudioError(
                f"Label Studio at {url} refused the token {masked(token)} ({error.status_code}): copy a fresh one "
                "from Account & Settings, then run `lingualoop labelstudio connect` again."
            ) from None
        raise LabelStudioError(f"Label Studio at {url} answered {error.status_code}.") from None
    except Exception as error:  # httpx connection errors and timeouts
        raise LabelStudioError(
            f"Cannot reach Label Studio at {url} ({type(error).__name__}): is it running? "
            "`lingualoop labelstudio serve` starts a local one."
        ) from None
    return client


@contextmanager
def calling(url: str, action: str, outcome: str = "") -> Iterator[None]:
    """Turn what the SDK raises while `action` ("creating tasks") into a LabelStudioError that says what failed
    (an HTTP status, a timeout, a dropped connection) and, with `outcome`, what that left ("nothing was
    recorded"). Errors that are not Label Studio's or the network's pass through untouched."""
    import httpx
    from label_studio_sdk.core.api_error import ApiError

    after = f": {outcome}" if outcome else ""
    try:
        yield
    except ApiError as error:
        raise LabelStudioError(
            f"Label Studio at {url} answered {error.status_code} while {action}{after}."
        ) from error
    except httpx.TimeoutException as error:
        raise LabelStudioError(
            f"Label Studio at {url} did not answer within {TIMEOUT_SECONDS} s while {action}{after}. "
            "Try again when it is less busy."
        ) from error
    except httpx.HTTPError as error:
        raise LabelStudioError(
            f"Lost the connection to Label Studio at {url} while {action} ({type(error).__name__}){after}."
        ) from error


def find_project(client: Any, url: str, ls_project_id: int, outcome: str = "") -> Any | None:
    """The Label Studio project, or None only when Label Studio says it does not exist (404). A timeout or any
    other error raises LabelStudioError: a slow server must never pass for a deleted project, or connecting
    again would create a second one."""
    from label_studio_sdk.core.api_error import ApiError

    with calling(url, f"looking up its project {ls_project_id}", outcome):
        try:
            return client.projects.get(id=ls_project_id)
        except ApiError as error:  # the SDK's NotFoundError is an ApiError with status 404, as is a plain one
            if error.status_code == 404:
                return None
            raise
