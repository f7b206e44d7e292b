-- wrk has no flag for a request body: POST the one in $HOSTILE_BODY.
wrk.method = "POST"
wrk.body = os.getenv("HOSTILE_BODY")
