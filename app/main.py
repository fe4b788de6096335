"""The lingualoop web app: sign in, then the pages your role allows.

    streamlit run app/main.py        (or `lingualoop demo`, which also starts a worker)

Heavy libraries (torch, transformers, peft, small_text) are never imported here: the worker trains and scores in
its own process, and the app only reads and writes the database."""

import time
from collections.abc import Callable
from dataclasses import dataclass

import streamlit as st
from sqlalchemy import select

from annotator.accounts.access import ADMINS, RESEARCHERS, LoginThrottle
from annotator.accounts.session_tokens import MAX_AGE, issue_token, user_for_token
from annotator.accounts.users import authenticate
from annotator.corpus.projects import list_projects
from annotator.errors import LingualoopError
from app.components.notices import job_notices
from app.components.session_cookie import forget_session, keep_session, session_token
from app.context import database, show_error, transaction
from db.models import Role, User
from db.settings import session_secret

st.set_page_config(page_title="lingualoop", page_icon=":material/translate:", layout="wide")

PAGES = "app_pages"


@st.cache_resource(show_spinner=False)
def login_throttle() -> LoginThrottle:
    return LoginThrottle()


@st.cache_resource(show_spinner=False)
def token_secret() -> bytes:
    return session_secret(database().settings.data_dir)


@st.cache_resource(show_spinner=False)
def sign_outs() -> dict[int, float]:
    """When each user last signed out on this server: older tokens no longer sign anyone in."""
    return {}


def login_form() -> None:
    st.title("lingualoop")
    st.caption("Multilingual annotation and active learning for social-media research.")
    with st.form("login"):
        username = st.text_input("Username", key="login_username")
        password = st.text_input("Password", type="password", key="login_password")
        submitted = st.form_submit_button("Sign in", type="primary")
    if submitted:
        try:
            with transaction() as session:
                user = authenticate(session, username, password, login_throttle())
                st.session_state["user_id"] = user.id
                st.session_state.pop("signed_out", None)
        except LingualoopError as error:
            show_error(error)
        else:
            st.rerun()


def _session_token_for(user: User) -> str:
    """This session's cookie token, renewed once an hour: the same token on every rerun in between, so that the
    cookie's component is not redrawn after every answer."""
    issued, token = st.session_state.get("session_token", (0.0, ""))
    now = time.time()
    if not token or now - issued > 3600 or not token.startswith(f"{user.id}."):
        token = issue_token(user, token_secret(), now)
        st.session_state["session_token"] = (now, token)
    return str(token)


def restore_session() -> None:
    """Sign in again from the cookie this browser sent (a reload, or a link opened in a new tab), unless the
    user signed out in this session."""
    if st.session_state.get("signed_out"):
        return
    with transaction(read_only=True) as session:
        user = user_for_token(session, session_token(), token_secret(), time.time(), signed_out=sign_outs())
        if user is not None:
            st.session_state["user_id"] = user.id


@dataclass(frozen=True)
class PageSpec:
    file: str
    title: str
    icon: str
    url_path: str
    section: str
    roles: tuple[Role, ...]


# Every page, with the roles that may open it. A page a role may not open is still known to the navigation
# (hidden), so that a link to it says whose page it is instead of "page not found". (A comment, not a docstring:
# Streamlit would draw a bare string of the main script on the page.)
PAGE_SPECS = (
    PageSpec("annotate.py", "Annotate", ":material/edit_note:", "annotate", "Annotation", tuple(Role)),
    PageSpec("overview.py", "Overview", ":material/grid_view:", "overview", "Research", RESEARCHERS),
    PageSpec("agreement.py", "Agreement", ":material/handshake:", "agreement", "Research", RESEARCHERS),
    PageSpec(
        "annotators.py", "Annotators", ":material/verified_user:", "annotators", "Research", RESEARCHERS
    ),
    PageSpec("adjudicate.py", "Adjudicate", ":material/gavel:", "adjudicate", "Research", RESEARCHERS),
    PageSpec("flags.py", "Flagged posts", ":material/flag:", "flags", "Research", RESEARCHERS),
    PageSpec("models.py", "Models", ":material/monitoring:", "models", "Research", RESEARCHERS),
    PageSpec("findings.py", "Findings", ":material/insights:", "findings", "Research", RESEARCHERS),
    PageSpec("retrain.py", "Retrain", ":material/model_training:", "retrain", "Research", RESEARCHERS),
    PageSpec("sampling.py", "Sampling", ":material/tune:", "sampling", "Research", RESEARCHERS),
    PageSpec("import_posts.py", "Import", ":material/upload:", "import_posts", "Research", RESEARCHERS),
    PageSpec("export.py", "Export", ":material/download:", "export", "Research", RESEARCHERS),
    PageSpec("labelstudio.py", "Label Studio", ":material/sync_alt:", "labelstudio", "Research", RESEARCHERS),
    PageSpec("users.py", "Users", ":material/group:", "users", "Admin", ADMINS),
)


def _stand_in(spec: PageSpec, draw: Callable[[PageSpec], None]) -> st.Page:
    def page() -> None:
        draw(spec)

    page.__name__ = f"stand_in_{spec.url_path}"
    return st.Page(page, title=spec.title, icon=spec.icon, url_path=spec.url_path, visibility="hidden")


def _sign_in_first(_: PageSpec) -> None:
    login_form()


def choose_project() -> bool:
    with transaction(read_only=True) as session:
        projects = {p.name: p.id for p in list_projects(session)}
    if not projects:
        st.info("No project yet. Create one with `lingualoop init NAME` or try `lingualoop demo`.")
        return False
    names = list(projects)
    current = next((n for n, i in projects.items() if i == st.session_state.get("project_id")), names[0])
    chosen = st.sidebar.selectbox("Project", names, index=names.index(current)) if len(names) > 1 else current
    st.session_state["project_id"] = projects[chosen]
    return True


def navigation(user: User | None) -> None:
    """Signed out: the sign-in form, whatever page the link named (the page opens once signed in). Signed in:
    the pages of the user's role; the others say whose they are."""
    if user is None:
        login = st.Page(login_form, title="Sign in", icon=":material/login:", default=True)
        st.navigation([login, *[_stand_in(spec, _sign_in_first) for spec in PAGE_SPECS]]).run()
        return

    def not_yours(spec: PageSpec) -> None:
        allowed = " and ".join(f"{role.value}s" for role in spec.roles)
        st.title(spec.title)
        st.warning(
            f"This page is for {allowed}; you are signed in as {user.username} ({user.role.value}).",
            icon=":material/lock:",
        )

    pages: dict[str, list[st.Page]] = {}
    for spec in PAGE_SPECS:
        if user.role in spec.roles:
            page = st.Page(
                f"{PAGES}/{spec.file}",
                title=spec.title,
                icon=spec.icon,
                url_path=spec.url_path,
                default=spec.url_path == "annotate",
            )
        else:
            page = _stand_in(spec, not_yours)
        pages.setdefault(spec.section, []).append(page)
    # Every page listed: collapsed, Streamlit would hide those past the tenth behind "View more".
    st.navigation(pages, expanded=True).run()


def main() -> None:
    database()  # fail early, with the real message, if the database cannot be opened
    if st.session_state.get("user_id") is None:
        restore_session()
    user_id = st.session_state.get("user_id")
    if user_id is None:
        if st.session_state.get("signed_out"):
            with st.sidebar:
                forget_session()
        navigation(None)
        return
    with transaction(read_only=True) as session:
        user = session.scalar(select(User).where(User.id == user_id, User.active.is_(True)))
        if user is not None:
            token = _session_token_for(user)
            session.expunge(user)
    if user is None:
        st.session_state.pop("user_id", None)
        st.session_state["signed_out"] = True
        st.rerun()
        return
    with st.sidebar:
        keep_session(token, MAX_AGE)
        st.caption(f"Signed in as **{user.username}** ({user.role.value})")
        if st.button("Sign out", key="sign_out", icon=":material/logout:"):
            sign_outs()[user.id] = time.time()
            st.session_state.clear()
            st.session_state["signed_out"] = True
            st.rerun()
    if not choose_project():
        return
    if user.role in RESEARCHERS:
        with st.sidebar:
            job_notices()
    navigation(user)


main()
