from instances.urls import method
from messaging import api, api_files, calls_api

urlpatterns = [
    method(api.SendMessage),
    method(api.SendPoll),
    method(api.SendLocation),
    method(api.SendContact),
    method(api_files.SendFileByUpload),
    method(api_files.SendFileByUrl),
    method(api_files.UploadFile),
    method(api.ForwardMessages),
    method(api.SendInteractiveButtons),
    method(api.SendInteractiveButtonsReply),
    method(api.SendTyping),
    method(api.SendButtons),
    method(api.SendTemplateButtons),
    method(api.SendListMessage),
    method(api.SendLink),
    method(api.ShowMessagesQueue),
    method(api.ClearMessagesQueue),
    method(api.GetMessagesCount),
    method(calls_api.CallsState),
    method(calls_api.CallsGetIceServers),
    method(calls_api.CallsDial),
    method(calls_api.CallsAccept),
    method(calls_api.CallsReject),
    method(calls_api.CallsHangUp),
]
