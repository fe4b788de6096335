"""Users (admins): accounts, roles, the languages each annotator labels, new accounts with a one-time password."""

import pandas as pd
import streamlit as st

from annotator.accounts.users import add_user, generate_password, list_users, set_password, update_user
from annotator.errors import LingualoopError
from app.context import current_project, show_error, signed_in_user, transaction
from core.languages import language_name
from db.models import Role

ROLES = [role.value for role in Role]


def render() -> None:
    with transaction(read_only=True) as session:
        me = signed_in_user(session)
        users = [
            (u.username, u.role.value, list(u.languages), u.active, u.password_hash is not None)
            for u in list_users(session, by=me)
        ]
        languages = list(current_project(session).languages)
    st.title("Users")
    people = [u for u in users if u[4]]
    holders = [u[0] for u in users if not u[4]]
    st.dataframe(
        pd.DataFrame(
            [
                {"user": name, "role": role, "languages": ", ".join(langs) or "all", "active": active}
                for name, role, langs, active, _ in people
            ]
        ),
        hide_index=True,
    )
    if holders:
        st.caption(
            "Labels that came in with imported files (or from Label Studio users without an account here) are kept "
            f"under accounts nobody signs in with: {', '.join(holders)}. They are not annotators of this app; "
            "giving one a new password under *Change an account* turns it into a real account."
        )
    if created := st.session_state.pop("new_password", None):
        name, password, what = created
        st.success(f"Account **{name}** {what}. Password (shown once): `{password}`")
    st.subheader("New account")
    with st.form("add_user", clear_on_submit=True):
        columns = st.columns(3)
        username = columns[0].text_input("Username")
        role = columns[1].selectbox("Role", ROLES)
        chosen = columns[2].multiselect(
            "Languages (empty: all)", languages, format_func=lambda c: f"{language_name(c)} ({c})"
        )
        if st.form_submit_button("Create", type="primary"):
            password = generate_password()
            try:
                with transaction() as session:
                    add_user(
                        session,
                        username,
                        role=Role(role),
                        password=password,
                        languages=chosen,
                        by=signed_in_user(session),
                    )
            except LingualoopError as error:
                show_error(error)
            else:
                st.session_state["new_password"] = (username.strip(), password, "created")
                st.rerun()
    names = [name for name, *_ in users]
    if not names:
        return
    st.subheader("Change an account")
    name = st.selectbox("Account", names)
    _, role_now, langs_now, active_now, _ = next(u for u in users if u[0] == name)
    with st.form("edit_user"):
        columns = st.columns(3)
        role = columns[0].selectbox("Role", ROLES, index=ROLES.index(role_now))
        chosen = columns[1].multiselect(
            "Languages",
            sorted(set(languages) | set(langs_now)),
            default=langs_now,
            format_func=lambda c: f"{language_name(c)} ({c})",
        )
        active = columns[2].checkbox("Active", value=active_now)
        reset = st.checkbox("Give a new password")
        if st.form_submit_button("Save", type="primary"):
            try:
                with transaction() as session:
                    by = signed_in_user(session)
                    update_user(session, name, role=Role(role), languages=chosen, active=active, by=by)
                    new_password = generate_password() if reset else None
                    if new_password:
                        set_password(session, name, new_password, by=by)
            except LingualoopError as error:
                show_error(error)
            else:
                if new_password:
                    st.session_state["new_password"] = (name, new_password, "has a new password")
                st.rerun()


render()
