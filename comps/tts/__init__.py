"""Speech synthesis service: SpeechT5 or Piper behind OPEA's /v1/tts and OpenAI's /v1/audio/speech."""
