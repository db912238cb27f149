"""The official GREEN-API Python SDK's group calls (``groups.*``), sync and async,
against a live server; effects are checked on the emulated network."""

from __future__ import annotations

import asyncio
from pathlib import Path

from whatsapp_api_client_python import API

from instances.models import Instance
from tests.conftest import LiveServer
from tests.factories import make_instance
from tests.groups.helpers import ALICE, BOB, CAROL, group, members, wid, with_contacts
from tests.instances.test_set_profile_picture import jpeg


def sdk(live: LiveServer, instance: Instance) -> API.GreenAPI:
    return API.GreenAPI(str(instance.id), instance.api_token, host=live.url, media=live.url)


def test_sync_group_calls(live_asgi: LiveServer, tmp_path: Path) -> None:
    instance = with_contacts(make_instance(authorized=True))
    groups = sdk(live_asgi, instance).groups
    created = groups.createGroup("SDK group", [wid(ALICE), wid(BOB)])
    assert created.code == 200 and created.data["created"] is True
    group_id = created.data["chatId"]

    assert groups.updateGroupName(group_id, "Renamed").data == {"updateGroupName": True}
    assert groups.addGroupParticipant(group_id, wid(CAROL)).data == {"addParticipant": True}
    assert groups.setGroupAdmin(group_id, wid(CAROL)).data == {"setGroupAdmin": True}
    assert groups.removeAdmin(group_id, wid(CAROL)).data == {"removeAdmin": True}
    assert groups.removeGroupParticipant(group_id, wid(BOB)).data == {"removeParticipant": True}
    settings = groups.updateGroupSettings(group_id, allowParticipantsSendMessages=False)
    assert settings.data == {"updateGroupSettings": True}
    picture = tmp_path / "group.jpg"
    picture.write_bytes(jpeg())
    answer = groups.setGroupPicture(group_id, str(picture))
    assert answer.code == 200 and answer.data["setGroupPicture"] is True
    data = groups.getGroupData(group_id).data
    assert data["subject"] == "Renamed"
    assert [p["id"] for p in data["participants"]] == [instance.wid, wid(ALICE), wid(CAROL)]
    assert group(group_id).only_admins_send is True and group(group_id).picture
    assert groups.leaveGroup(group_id).data == {"leaveGroup": True}
    assert instance.phone not in members(group_id)
    assert groups.getGroupData(group_id).data == "Error: forbidden"


def test_async_group_calls(live_asgi: LiveServer, tmp_path: Path) -> None:
    instance = with_contacts(make_instance(authorized=True))
    groups = sdk(live_asgi, instance).groups
    picture = tmp_path / "group.jpg"
    picture.write_bytes(jpeg())

    async def run() -> str:
        created = await groups.createGroupAsync("Async group", [wid(ALICE)])
        assert created.code == 200, created.error
        group_id = str(created.data["chatId"])
        assert (await groups.updateGroupNameAsync(group_id, "Async renamed")).data == {
            "updateGroupName": True
        }
        assert (await groups.addGroupParticipantAsync(group_id, wid(BOB))).data == {"addParticipant": True}
        assert (await groups.setGroupAdminAsync(group_id, wid(BOB))).data == {"setGroupAdmin": True}
        assert (await groups.removeAdminAsync(group_id, wid(BOB))).data == {"removeAdmin": True}
        assert (await groups.removeGroupParticipantAsync(group_id, wid(ALICE))).data == {
            "removeParticipant": True
        }
        answer = await groups.updateGroupSettingsAsync(group_id, allowParticipantsEditGroupSettings=False)
        assert answer.data == {"updateGroupSettings": True}
        uploaded = await groups.setGroupPictureAsync(group_id, str(picture))
        assert uploaded.code == 200 and uploaded.data["setGroupPicture"] is True, uploaded.data
        data = (await groups.getGroupDataAsync(group_id)).data
        assert data["subject"] == "Async renamed"
        assert [p["id"] for p in data["participants"]] == [instance.wid, wid(BOB)]
        assert (await groups.leaveGroupAsync(group_id)).data == {"leaveGroup": True}
        return group_id

    group_id = asyncio.run(run())
    assert group(group_id).only_admins_edit is True
    assert set(members(group_id)) == {BOB}
