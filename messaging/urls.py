from instances.urls import method
from messaging import api

urlpatterns = [
    method(api.SendMessage),
    method(api.SendPoll),
    method(api.SendLocation),
    method(api.SendContact),
    method(api.ShowMessagesQueue),
    method(api.ClearMessagesQueue),
    method(api.GetMessagesCount),
]
