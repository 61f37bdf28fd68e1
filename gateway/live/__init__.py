"""The live mode: a WebRTC conversation with the avatar (`POST /v1/realtime`)."""
