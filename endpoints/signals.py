"""What happens to an endpoint that higher apps (learning through the agents) want to know."""

from django.dispatch import Signal

# A person approved a draft (sender: GeneratedEndpoint class; endpoint=, user=).
endpoint_approved = Signal()
# A person rejected a draft, or a deployed version was rolled back (endpoint=, user=, reason=).
endpoint_rejected = Signal()
