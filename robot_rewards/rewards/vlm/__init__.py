"""VLM rewards and AI feedback over any OpenAI-compatible chat-completions endpoint with image
input (vLLM, SGLang, a hosted API).

- `config`: `VLMConfig` (base_url, model, api_key_env, timeout, retries, budget, cache) and the
  `vlm-label` command's config;
- `client`: `VLMClient.ask(prompt, images) -> Reply` (timeouts, retries with backoff, request
  budget, answer cache, one-line errors); `cache`: the SQLite answer cache;
- `prompts`, `parse`, `verdict`: one-word / one-number questions, strict parsing; anything
  malformed is "can't tell" (NaN), counted, never an exception;
- `pairwise`: `PairJudge`, which of two candidates drawn on the camera image is better (the
  preference store's teacher is `robot_rewards.preferences.vlm_teacher.VLMTeacher`);
- `success`: `SuccessDetector`, yes/no/can't tell of a frame (a task status; the registry's
  `vlm` state reward);
- `keypoints`: `VLMKeypointSource`, KAGI-style picks among numbered marks lifted to 3D by depth;
- `standin`: a stand-in server that answers from registered ground truth (tests, benchmark).
"""
