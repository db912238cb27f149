"""Wire routes of the journal, read-mark, service and contact methods."""

from instances.urls import method
from journals import chats_api, history_api

urlpatterns = [
    method(history_api.GetChatHistory),
    method(history_api.GetMessage),
    method(history_api.LastIncomingMessages),
    method(history_api.LastOutgoingMessages),
    method(history_api.LastIncomingCalls),
    method(history_api.LastOutgoingCalls),
    method(chats_api.ReadChat),
    method(chats_api.CheckWhatsapp),
    method(chats_api.GetAvatar),
    method(chats_api.GetContacts),
    method(chats_api.GetContactInfo),
    method(chats_api.DeleteMessage),
    method(chats_api.EditMessage),
    method(chats_api.ArchiveChat),
    method(chats_api.UnarchiveChat),
    method(chats_api.SetDisappearingChat),
    method(chats_api.GetChats),
    method(chats_api.AddContact),
    method(chats_api.EditContact),
    method(chats_api.DeleteContact),
]
