"""Keeps the sign-in token in a cookie (set and cleared in the browser by a tiny components-v2 script), so that a
reload or a link to a page finds the user still signed in (annotator/accounts/session_tokens.py signs and checks it)."""

import streamlit as st

COOKIE = "lingualoop_session"

_JS = """
export default function (component) {
  const { data } = component;
  if (!data) return;
  const base = `${data.name}=`;
  const options = "; path=/; SameSite=Strict";
  if (data.value) {
    document.cookie = `${base}${data.value}${options}; max-age=${data.max_age}`;
  } else {
    document.cookie = `${base}${options}; max-age=0`;
  }
}
"""

_mount = st.components.v2.component("lingualoop_session_cookie", html="", js=_JS, isolate_styles=False)


def keep_session(token: str, max_age: int) -> None:
    _mount(key="session_cookie", data={"name": COOKIE, "value": token, "max_age": max_age})


def forget_session() -> None:
    _mount(key="session_cookie", data={"name": COOKIE, "value": "", "max_age": 0})


def session_token() -> str | None:
    """The token the browser sent when this session connected."""
    value = st.context.cookies.get(COOKIE)
    return str(value) if value else None
