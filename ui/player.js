// The answer's player: plays the fragmented MP4 (H.264 + AAC) while the gateway still makes it.
//
// This is the body of gr.HTML's `js_on_load` (ui/page.py): `element` is the component's root,
// `props.value` the player's state as JSON, `watch` calls back when Python sends a new state:
//   {"poster": "avatar/<id>/image" | null,
//    "video": {"id": "<32 hex>", "src": "answer/<id>", "type": "video/mp4[; codecs=...]"} | null}
// A new video id starts a MediaSource: fetch() reads the UI's /answer/<id> (the gateway's stream,
// proxied from this page's own origin) chunk by chunk and appends every chunk to one SourceBuffer;
// play() is called as soon as something playable is buffered and endOfStream() once the response
// ends. The player's state is mirrored on the <video>: `data-state` (idle, loading, playing,
// ended, error) and `data-type` (the type given to the SourceBuffer), for tests and debugging.

const video = element.querySelector("video");
const caption = element.querySelector(".player-caption");
// Where codecs are named neither by the init segment nor by the event: x264's constrained baseline.
const FALLBACK_TYPE = 'video/mp4; codecs="avc1.42E01E, mp4a.40.2"';
let current = null; // {id, controller, url} of the video being played

function setState(state) {
  video.dataset.state = state;
}

function say(text) {
  caption.textContent = text;
  caption.hidden = !text;
}

function readState() {
  try {
    return JSON.parse(props.value || "{}") || {};
  } catch (err) {
    return {};
  }
}

function stop() {
  if (current !== null) {
    current.controller.abort();
    URL.revokeObjectURL(current.url);
    current = null;
  }
  if (video.hasAttribute("src")) {
    video.removeAttribute("src");
    video.load(); // back to the poster
  }
  delete video.dataset.type;
  setState("idle");
}

function render() {
  const state = readState();
  if (state.poster) {
    video.poster = state.poster;
  } else {
    video.removeAttribute("poster");
  }
  const wanted = state.video || null;
  if (current !== null && wanted !== null && current.id === wanted.id) {
    return; // the same answer: keep playing
  }
  stop();
  say("");
  if (wanted === null) return;
  if (typeof MediaSource === "undefined") {
    setState("error");
    say("this browser cannot play a video while it is made (no MediaSource): it is offered below once done");
    return;
  }
  start(wanted).catch((err) => {
    setState("error");
    say(`the player failed: ${err.message}`);
  });
}

// --- The init segment: where the stream's codecs are read from -------------------------------

function u32(bytes, at) {
  return ((bytes[at] << 24) | (bytes[at + 1] << 16) | (bytes[at + 2] << 8) | bytes[at + 3]) >>> 0;
}

function fourcc(bytes, at) {
  return String.fromCharCode(bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]);
}

// The top-level `moov` box once `bytes` holds all of it; null while more bytes are needed.
function completeMoov(bytes) {
  let at = 0;
  while (at + 8 <= bytes.length) {
    let size = u32(bytes, at);
    if (size === 1) {
      if (at + 16 > bytes.length) return null;
      size = u32(bytes, at + 8) * 2 ** 32 + u32(bytes, at + 12); // 64-bit largesize
    } else if (size === 0) {
      size = Infinity; // "to the end of the file": never complete while streaming
    }
    if (size < 8) throw new Error("the video stream is not an MP4 (bad box size)");
    if (fourcc(bytes, at + 4) === "moov") {
      return at + size <= bytes.length ? bytes.subarray(at, at + size) : null;
    }
    at += size;
  }
  return null;
}

function find(bytes, type, from = 0) {
  for (let at = from; at + 4 <= bytes.length; at++) {
    if (fourcc(bytes, at) === type) return at;
  }
  return -1;
}

function hex2(n) {
  return n.toString(16).toUpperCase().padStart(2, "0");
}

// An MPEG-4 descriptor's tag and body position (ISO/IEC 14496-1: size in 7-bit groups).
function descriptor(bytes, at) {
  const tag = bytes[at];
  let size = 0;
  let i = at + 1;
  for (let n = 0; n < 4; n++, i++) {
    size = (size << 7) | (bytes[i] & 0x7f);
    if (!(bytes[i] & 0x80)) {
      i++;
      break;
    }
  }
  return { tag, body: i, end: i + size };
}

// "mp4a.40.2" from an `esds` box: the object type indication and the audio object type.
function audioCodec(moov) {
  const esds = find(moov, "esds");
  if (esds < 0) return find(moov, "mp4a") >= 0 ? "mp4a.40.2" : null;
  let d = descriptor(moov, esds + 8); // after the fourcc and the box's version + flags
  if (d.tag !== 0x03) return null; // ES_Descriptor
  const flags = moov[d.body + 2];
  let at = d.body + 3;
  if (flags & 0x80) at += 2; // streamDependenceFlag: dependsOn_ES_ID
  if (flags & 0x40) at += 1 + moov[at]; // URL_Flag: URLlength + URLstring
  if (flags & 0x20) at += 2; // OCRstreamFlag: OCR_ES_Id
  d = descriptor(moov, at);
  if (d.tag !== 0x04) return null; // DecoderConfigDescriptor
  const objectType = moov[d.body];
  const info = descriptor(moov, d.body + 13);
  if (info.tag !== 0x05) return `mp4a.${objectType.toString(16)}`;
  let audioObjectType = moov[info.body] >> 3;
  if (audioObjectType === 31) {
    audioObjectType = 32 + (((moov[info.body] & 0x07) << 3) | (moov[info.body + 1] >> 5));
  }
  return `mp4a.${objectType.toString(16)}.${audioObjectType}`;
}

// RFC 6381 codecs of the init segment, e.g. "avc1.42C01E, mp4a.40.2"; null if it names no H.264.
function codecsOf(moov) {
  const avcC = find(moov, "avcC");
  if (avcC < 0 || avcC + 8 > moov.length) return null;
  // AVCDecoderConfigurationRecord: version, profile_idc, constraint flags, level_idc.
  const avc = `avc1.${hex2(moov[avcC + 5])}${hex2(moov[avcC + 6])}${hex2(moov[avcC + 7])}`;
  const audio = audioCodec(moov);
  return audio ? `${avc}, ${audio}` : avc;
}

function chooseType(moov, announced) {
  let parsed = null;
  try {
    parsed = codecsOf(moov);
  } catch (err) {
    parsed = null;
  }
  const candidates = [
    parsed && `video/mp4; codecs="${parsed}"`, // the bytes themselves: the truth
    announced && announced.includes("codecs=") ? announced : null, // what the gateway said
    FALLBACK_TYPE,
  ];
  for (const type of candidates) {
    if (type && MediaSource.isTypeSupported(type)) return type;
  }
  throw new Error(`this browser cannot play ${candidates[0] || announced || "the answer's video"}`);
}

// --- Streaming into MediaSource ------------------------------------------------------------------

async function serverMessage(response) {
  try {
    const body = await response.json();
    if (body && body.error && body.error.message) return body.error.message;
  } catch (err) {
    // not the error envelope: fall through
  }
  return `the video answered ${response.status} ${response.statusText}`;
}

function concat(chunks) {
  const total = chunks.reduce((n, c) => n + c.length, 0);
  const out = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

async function start(info) {
  const controller = new AbortController();
  const source = new MediaSource();
  const mine = { id: info.id, controller, url: URL.createObjectURL(source) };
  current = mine;
  const live = () => current === mine;
  setState("loading");
  video.src = mine.url;
  await new Promise((resolve) => source.addEventListener("sourceopen", resolve, { once: true }));
  if (!live()) return;

  let buffer = null; // the SourceBuffer, made once the init segment is complete
  let head = []; // bytes before the init segment is complete
  const queue = []; // chunks waiting while the SourceBuffer is busy
  let finished = false; // the response has ended
  let started = false; // play() has been called

  const fail = (text) => {
    if (!live()) return;
    setState("error");
    say(text);
  };

  const startIfPlayable = () => {
    if (started || video.buffered.length === 0) return;
    started = true;
    // The first buffered time can sit a little after 0 (edit lists, audio priming): start there.
    if (video.currentTime < video.buffered.start(0)) video.currentTime = video.buffered.start(0);
    setState("playing");
    video.play().catch(() => {
      // No user gesture counts for this page (autoplay policy): play muted; the controls unmute.
      video.muted = true;
      return video.play().catch((err) => fail(`the browser refused to play the answer: ${err.message}`));
    });
  };

  const pump = () => {
    if (!live() || buffer === null || buffer.updating || source.readyState !== "open") return;
    if (queue.length > 0) {
      const chunk = concat(queue.splice(0));
      try {
        buffer.appendBuffer(chunk);
      } catch (err) {
        fail(`the answer's video cannot be buffered: ${err.message}`);
      }
      return;
    }
    if (finished) source.endOfStream();
  };

  video.addEventListener(
    "ended",
    () => {
      if (live()) setState("ended");
    },
    { signal: controller.signal },
  );

  let response;
  try {
    response = await fetch(info.src, { signal: controller.signal, cache: "no-store" });
  } catch (err) {
    if (live()) fail(`the answer's video cannot be fetched: ${err.message}`);
    return;
  }
  if (!response.ok) {
    fail(await serverMessage(response));
    return;
  }
  const reader = response.body.getReader();
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (!live()) return;
      if (done) break;
      if (buffer === null) {
        head.push(value);
        const bytes = concat(head);
        head = [bytes];
        const moov = completeMoov(bytes);
        if (moov === null) continue;
        try {
          const type = chooseType(moov, info.type);
          buffer = source.addSourceBuffer(type);
          video.dataset.type = type;
        } catch (err) {
          fail(err.message);
          controller.abort();
          return;
        }
        buffer.addEventListener("updateend", () => {
          startIfPlayable();
          pump();
        });
        buffer.addEventListener("error", () => fail("the browser could not decode the answer's video"));
        queue.push(bytes);
        head = [];
      } else {
        queue.push(value);
      }
      pump();
    }
  } catch (err) {
    if (!live()) return;
    fail(`the answer's video broke off: ${err.message}`); // what arrived still plays to its end
  }
  if (buffer === null) {
    if (video.dataset.state !== "error") fail("the answer's video ended before its first frame");
    return;
  }
  finished = true;
  pump();
}

render();
watch("value", render);
