"""The lingualoop web app: sign in, then the pages your role allows.

    streamlit run app/main.py        (or `lingualoop demo`, which also starts a worker)

Heavy libraries (torch, transformers, peft, small_text) are never imported here: the worker trains and scores in
its own process, and the app only reads and writes the database."""

import streamlit as st
from sqlalchemy import select

from annotator.access import ADMINS, RESEARCHERS, LoginThrottle
from annotator.errors import LingualoopError
from annotator.projects import list_projects
from annotator.users import authenticate
from app.context import database, show_error, transaction
from db.models import User

st.set_page_config(page_title="lingualoop", page_icon=":material/translate:", layout="wide")

PAGES = "app_pages"


@st.cache_resource(show_spinner=False)
def login_throttle() -> LoginThrottle:
    return LoginThrottle()


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
        except LingualoopError as error:
            show_error(error)
        else:
            st.rerun()


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


def navigation(user: User) -> None:
    annotate = st.Page(f"{PAGES}/annotate.py", title="Annotate", icon=":material/edit_note:", default=True)
    pages: dict[str, list[st.Page]] = {"Annotation": [annotate]}
    if user.role in RESEARCHERS:
        pages["Research"] = [
            st.Page(f"{PAGES}/overview.py", title="Overview", icon=":material/grid_view:"),
            st.Page(f"{PAGES}/agreement.py", title="Agreement", icon=":material/handshake:"),
            st.Page(f"{PAGES}/adjudicate.py", title="Adjudicate", icon=":material/gavel:"),
            st.Page(f"{PAGES}/flags.py", title="Flagged posts", icon=":material/flag:", url_path="flags"),
            st.Page(f"{PAGES}/models.py", title="Models", icon=":material/monitoring:"),
            st.Page(
                f"{PAGES}/findings.py", title="Findings", icon=":material/insights:", url_path="findings"
            ),
            st.Page(f"{PAGES}/retrain.py", title="Retrain", icon=":material/model_training:"),
            st.Page(f"{PAGES}/sampling.py", title="Sampling", icon=":material/tune:"),
            st.Page(f"{PAGES}/import_posts.py", title="Import", icon=":material/upload:"),
            st.Page(f"{PAGES}/export.py", title="Export", icon=":material/download:"),
            st.Page(f"{PAGES}/labelstudio.py", title="Label Studio", icon=":material/sync_alt:"),
        ]
    if user.role in ADMINS:
        pages["Admin"] = [st.Page(f"{PAGES}/users.py", title="Users", icon=":material/group:")]
    st.navigation(pages).run()


def main() -> None:
    database()  # fail early, with the real message, if the database cannot be opened
    user_id = st.session_state.get("user_id")
    if user_id is None:
        st.navigation([st.Page(login_form, title="Sign in", icon=":material/login:")]).run()
        return
    with transaction(read_only=True) as session:
        user = session.scalar(select(User).where(User.id == user_id, User.active.is_(True)))
        if user is not None:
            session.expunge(user)
    if user is None:
        st.session_state.pop("user_id", None)
        st.rerun()
        return
    with st.sidebar:
        st.caption(f"Signed in as **{user.username}** ({user.role.value})")
        if st.button("Sign out", key="sign_out", icon=":material/logout:"):
            st.session_state.clear()
            st.rerun()
    if not choose_project():
        return
    navigation(user)


main()
