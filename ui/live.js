// The Live tab: a hands-free conversation with the avatar over WebRTC.
//
// This is the body of gr.HTML's `js_on_load` (ui/page.py): `element` is the component's root and
// `props.value` JSON {"avatar": "<id>" | null} (the avatar chosen on the page), updated through
// `watch`. Start asks for the microphone, offers it (plus one received audio and video track and
// an `events` data channel) to the UI's own /live/offer (proxied to the gateway's
// POST /v1/realtime), and plays what comes back. The data channel's JSON events drive the state
// line, the transcript and the answer text; errors are shown as the server said them. The state
// is mirrored on the .live box for tests: data-live (off, connecting, on, error) and data-state
// (listening, thinking, speaking).

const root = element.querySelector(".live");
const video = root.querySelector("video");
const start = element.querySelector(".live-start");
const stopButton = element.querySelector(".live-stop");
const meter = element.querySelector(".live-level");
const stateLine = element.querySelector(".live-state");
const heard = element.querySelector(".live-heard");
const said = element.querySelector(".live-said");
const problem = element.querySelector(".live-error");
let session = null; // {pc, stream, audioContext, location, timer}

function avatar() {
  try {
    return (JSON.parse(props.value || "{}") || {}).avatar || null;
  } catch (err) {
    return null;
  }
}

function show(live, text) {
  root.dataset.live = live;
  stateLine.textContent = text;
  start.disabled = live === "connecting" || live === "on";
  stopButton.disabled = !(live === "connecting" || live === "on");
}

function fail(message) {
  problem.textContent = message;
  problem.hidden = !message;
}

const LABELS = { listening: "Listening…", thinking: "Thinking…", speaking: "Speaking" };

function onEvent(event) {
  if (event.type === "state") {
    root.dataset.state = event.state;
    stateLine.textContent = LABELS[event.state] || event.state;
    if (event.state === "thinking") said.textContent = "";
  } else if (event.type === "transcript") {
    heard.textContent = event.text;
  } else if (event.type === "answer") {
    said.textContent += event.delta;
  } else if (event.type === "interrupted") {
    said.textContent = event.spoken ? `${event.spoken} …` : "";
  } else if (event.type === "error") {
    fail(event.error.message);
  } else if (event.type === "closed") {
    fail(event.reason === "idle_timeout" ? "the session ended: nobody spoke for a while" : "the server ended the session");
    stop();
  }
}

// The microphone's level, 0..1, on the meter (WebAudio), ~20 times a second.
function watchLevel(stream) {
  const context = new AudioContext();
  const analyser = context.createAnalyser();
  analyser.fftSize = 512;
  context.createMediaStreamSource(stream).connect(analyser);
  const samples = new Float32Array(analyser.fftSize);
  const timer = setInterval(() => {
    analyser.getFloatTimeDomainData(samples);
    let sum = 0;
    for (const s of samples) sum += s * s;
    meter.value = Math.min(1, Math.sqrt(sum / samples.length) * 4);
  }, 50);
  return { context, timer };
}

async function answerOf(pc) {
  const query = avatar() ? `?avatar=${encodeURIComponent(avatar())}` : "";
  const response = await fetch(`live/offer${query}`, {
    method: "POST",
    headers: { "Content-Type": "application/sdp" },
    body: pc.localDescription.sdp,
  });
  const text = await response.text();
  if (!response.ok) {
    let message = text;
    try {
      message = JSON.parse(text).error.message;
    } catch (err) {
      // not the error envelope: show the body as it came
    }
    throw new Error(message || `HTTP ${response.status}`);
  }
  return { sdp: text, location: response.headers.get("Location") };
}

// ICE gathering done (the gateway takes one offer with every candidate, no trickle).
function gathered(pc) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const check = () => {
      if (pc.iceGatheringState === "complete") {
        pc.removeEventListener("icegatheringstatechange", check);
        resolve();
      }
    };
    pc.addEventListener("icegatheringstatechange", check);
    setTimeout(resolve, 3000); // enough candidates by then on any network that can work at all
  });
}

async function begin() {
  fail("");
  heard.textContent = "";
  said.textContent = "";
  show("connecting", "Connecting…");
  const stream = await navigator.mediaDevices.getUserMedia({
    audio: { echoCancellation: true, noiseSuppression: true, autoGainControl: true },
  });
  const pc = new RTCPeerConnection();
  session = { pc, stream, level: watchLevel(stream), location: null };
  for (const track of stream.getAudioTracks()) pc.addTrack(track, stream);
  pc.addTransceiver("video", { direction: "recvonly" });
  const remote = new MediaStream();
  pc.ontrack = (event) => {
    remote.addTrack(event.track);
    video.srcObject = remote;
    video.play().catch(() => {}); // autoplay with sound may wait for a click: Start was one
  };
  const channel = pc.createDataChannel("events");
  channel.onmessage = (message) => onEvent(JSON.parse(message.data));
  pc.onconnectionstatechange = () => {
    if (pc.connectionState === "connected") show("on", LABELS[root.dataset.state] || "Listening…");
    if (pc.connectionState === "failed") {
      fail("the connection to the avatar failed (a firewall or NAT may need a TURN server)");
      stop("error");
    }
  };
  await pc.setLocalDescription(await pc.createOffer());
  await gathered(pc);
  const answer = await answerOf(pc);
  session.location = answer.location;
  await pc.setRemoteDescription({ type: "answer", sdp: answer.sdp });
}

function stop(live = "off") {
  if (session === null) return;
  const { pc, stream, level, location } = session;
  session = null;
  clearInterval(level.timer);
  level.context.close();
  for (const track of stream.getTracks()) track.stop();
  pc.close();
  video.srcObject = null;
  meter.value = 0;
  if (location) fetch(`live/session/${location.split("/").pop()}`, { method: "DELETE" }).catch(() => {});
  delete root.dataset.state;
  show(live, live === "off" ? "Stopped." : "Stopped after an error.");
}

start.addEventListener("click", () => {
  begin().catch((err) => {
    fail(err.message || String(err));
    stop("error");
  });
});
stopButton.addEventListener("click", () => stop());
show("off", "Press Start and speak: the avatar answers when you pause.");
