"""Wire routes of the group methods (API.md §9.6)."""

from __future__ import annotations

from groups import api
from instances.urls import method

urlpatterns = [
    method(api.CreateGroup),
    method(api.UpdateGroupName),
    method(api.GetGroupData),
    method(api.AddGroupParticipant),
    method(api.RemoveGroupParticipant),
    method(api.SetGroupAdmin),
    method(api.RemoveAdmin),
    method(api.SetGroupPicture),
    method(api.LeaveGroup),
    method(api.UpdateGroupSettings),
]
