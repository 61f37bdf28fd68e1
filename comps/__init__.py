"""AvatarChatbot model services and their shared core."""
