"""The sandbox's built-in credentials: what the clients use when no real ones are set.

They open nothing but the local sandbox; real credentials come only from environment variables.
"""

GREENHOUSE_CLIENT_ID = "sandbox-greenhouse-client"
GREENHOUSE_CLIENT_SECRET = "sandbox-greenhouse-secret"
GREENHOUSE_USER_ID = 1  # the `sub` (acting user) of the client-credentials grant

KEAP_API_KEY = "sandbox-keap-api-key"  # a Personal Access Token (X-Keap-API-Key)
KEAP_CLIENT_ID = "sandbox-keap-client"
KEAP_CLIENT_SECRET = "sandbox-keap-secret"
KEAP_AUTHORIZATION_CODE = "sandbox-keap-code"  # exchanged at /keap/token for the first pair

HIGHLEVEL_TOKEN = "sandbox-highlevel-token"  # a Private Integration Token (Bearer)
HIGHLEVEL_LOCATION_ID = "sbxLocation0000000001"
HIGHLEVEL_API_VERSION = "2021-07-28"
