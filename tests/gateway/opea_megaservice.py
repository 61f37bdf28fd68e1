"""An AvatarChatbot megaservice written with OPEA's own `opea-comps` package (run in its own venv).

It is what an OPEA user already has: `ServiceOrchestrator` with four remote `MicroService` nodes
and the `align_inputs` override of OPEA's AvatarChatbot example. The test runs it against our
services. Usage: python opea_megaservice.py '{"asr": 7066, "llm": 9000, "tts": 7055, "animation": 9066,
"audio_b64": "...", "max_tokens": 16}'; prints one JSON line with every node's result.
"""

import asyncio
import json
import sys

from comps.cores.proto.docarray import LLMParams

from comps import MicroService, ServiceOrchestrator, ServiceType


def build(ports):
    megaservice = ServiceOrchestrator()

    def align_inputs(inputs, cur_node, runtime_graph, llm_parameters_dict, **kwargs):
        kind = megaservice.services[cur_node].service_type
        if kind == ServiceType.LLM:
            return {
                "messages": [{"role": "user", "content": inputs["asr_result"]}],
                "max_tokens": llm_parameters_dict["max_tokens"],
                "temperature": llm_parameters_dict["temperature"],
                "top_p": llm_parameters_dict["top_p"],
                "stream": False,
            }
        if kind == ServiceType.TTS:
            return {"text": inputs["choices"][0]["message"]["content"]}
        if kind == ServiceType.ANIMATION:
            return {"byte_str": inputs["tts_result"]}
        return inputs

    megaservice.align_inputs = align_inputs  # OPEA's way: the example overrides the hook
    nodes = [
        ("asr", "/v1/asr", ServiceType.ASR),
        ("llm", "/v1/chat/completions", ServiceType.LLM),
        ("tts", "/v1/tts", ServiceType.TTS),
        ("animation", "/v1/animation", ServiceType.ANIMATION),
    ]
    services = [
        MicroService(name=name, host="127.0.0.1", port=ports[name], endpoint=endpoint, use_remote_service=True,
                     service_type=kind)
        for name, endpoint, kind in nodes
    ]  # fmt: skip
    for service in services:
        megaservice.add(service)
    for upstream, downstream in zip(services, services[1:], strict=False):
        megaservice.flow_to(upstream, downstream)
    return megaservice


async def main(config):
    megaservice = build(config)
    parameters = LLMParams(max_tokens=config["max_tokens"], temperature=0.0, top_p=1.0, stream=False)
    results, runtime_graph = await megaservice.schedule({"audio": config["audio_b64"]}, llm_parameters=parameters)
    leaf = runtime_graph.all_leaves()[-1]
    sys.stdout.write(json.dumps({"leaf": leaf, "results": results}) + "\n")


if __name__ == "__main__":
    asyncio.run(main(json.loads(sys.argv[1])))
