from sqlalchemy.orm import Session

from annotator.access import OPERATOR
from annotator.models import request_retrain
from testing.factories import make_project


def test_one_queued_retrain_and_from_scratch_wins(session: Session) -> None:
    project = make_project(session)
    first = request_retrain(session, project, by=OPERATOR)
    again = request_retrain(session, project, from_scratch=True, by=OPERATOR)
    assert again.id == first.id and again.payload == {"from_scratch": True}
    assert request_retrain(session, project, by=OPERATOR).payload == {"from_scratch": True}
