-- wrk -s bench/wrk/post_memo.lua URL: every request creates a memo (POST /memos/).
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"title": "bench", "content": "a memo written under load", "tags": ["bench", "wrk"]}'
