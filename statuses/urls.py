from instances.urls import method
from statuses import api

urlpatterns = [
    method(api.SendTextStatus),
    method(api.SendVoiceStatus),
    method(api.SendMediaStatus),
    method(api.DeleteStatus),
    method(api.GetStatusStatistic),
    method(api.GetIncomingStatuses),
    method(api.GetOutgoingStatuses),
]
