"""The Label Studio client: connection with errors a researcher understands, the token from the environment or a
0600 file, and never shown whole."""

import os
from pathlib import Path
from typing import Any

from annotator.errors import LingualoopError
from db.settings import masked, secret_from_env

TOKEN_ENV = "LINGUALOOP_LABELSTUDIO_TOKEN"


class LabelStudioError(LingualoopError):
    """Label Studio could not be reached, refused us, or answered something unexpected."""


def token_file(data_dir: Path) -> Path:
    return data_dir / "labelstudio" / "token"


def save_token(data_dir: Path, token: str) -> Path:
    """Store the token readable by its owner only (0600), never in the database."""
    path = token_file(data_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(token)
    os.chmod(path, 0o600)
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

    client = LabelStudio(base_url=url.rstrip("/"), api_key=token, timeout=60)  # type: ignore[no-untyped-call]
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
