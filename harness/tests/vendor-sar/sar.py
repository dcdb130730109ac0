#!/usr/bin/env python3
"""A vendor's SAR, written from docs/certification.md alone (Python standard library only).

It is the "system outside the crate" that `ecosim certify` is tried with: nothing of
ecosim's code is used. `--defect NAME` breaks it on purpose (see DEFECTS).

    python3 sar.py --port 0 --sistema-ts URL --sms-gateway URL --smtp HOST:PORT

It prints `listening on http://127.0.0.1:PORT` once it accepts requests.
"""

import argparse
import base64
import datetime
import json
import re
import smtplib
import threading
import time
import urllib.error
import urllib.request
import uuid
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# crossed-sms: each CUN goes to the number of the result texted before it (a mix-up
# between citizens: as many SMS as results, none to the right phone but the first).
DEFECTS = {"no-retry", "new-key", "cf-in-sms", "contacts-to-ts", "crossed-sms"}
CF = re.compile(r"^[A-Z]{6}[0-9LMNPQRSTUV]{2}[ABCDEHLMPRST][0-9LMNPQRSTUV]{2}[A-Z][0-9LMNPQRSTUV]{3}[A-Z]$")
OMOCODIA = {c: str(i) for i, c in enumerate("LMNPQRSTUV")}
MONTHS = "ABCDEHLMPRST"
ODD = [1, 0, 5, 7, 9, 13, 15, 17, 19, 21, 2, 4, 18, 20, 11, 3, 6, 8, 12, 14, 16, 10, 22, 25, 24, 23]


def cf_check(cf):
    total = 0
    for i, ch in enumerate(cf[:15]):
        v = int(ch) if ch.isdigit() else ord(ch) - ord("A")
        total += ODD[v] if i % 2 == 0 else v
    return chr(ord("A") + total % 26)


def birth_date(cf, today):
    digits = lambda s: "".join(OMOCODIA.get(c, c) for c in s)
    yy, day = int(digits(cf[6:8])), int(digits(cf[9:11])) % 40
    month = MONTHS.index(cf[8]) + 1
    year = 2000 + yy if 2000 + yy <= today.year else 1900 + yy
    return datetime.date(year, month, day)


def italian_today():
    """Today in Italy: ecosim's dates are Europe/Rome dates."""
    try:
        from zoneinfo import ZoneInfo
        return datetime.datetime.now(ZoneInfo("Europe/Rome")).date()
    except Exception:  # no tz database: UTC is at most a day off around midnight
        return datetime.datetime.now(datetime.timezone.utc).date()


def age_on(born, day):
    return day.year - born.year - ((day.month, day.day) < (born.month, born.day))


class Sar:
    def __init__(self, args):
        self.args = args
        self.defects = set(args.defect or [])
        self.results = {}
        self.lock = threading.Lock()
        self.last_number = None

    # -- intake -------------------------------------------------------------
    def accept(self, lab, body):
        errors = []
        cf = body.get("codice_fiscale")
        if not isinstance(cf, str) or not CF.match(cf) or cf_check(cf) != cf[15]:
            errors.append({"field": "codice_fiscale", "message": "not a valid codice fiscale"})
        if body.get("esito") not in ("POSITIVO", "NEGATIVO"):
            errors.append({"field": "esito", "message": "POSITIVO or NEGATIVO"})
        if body.get("tipo_test") not in ("MOLECOLARE", "ANTIGENICO"):
            errors.append({"field": "tipo_test", "message": "MOLECOLARE or ANTIGENICO"})
        try:
            day = datetime.date.fromisoformat(body.get("data_esecuzione", ""))
        except (TypeError, ValueError):
            day = None
            errors.append({"field": "data_esecuzione", "message": "a date YYYY-MM-DD"})
        if not body.get("struttura"):
            errors.append({"field": "struttura", "message": "required"})
        if errors:
            return 400, {"type": "about:blank", "title": "invalid fields", "status": 400, "errors": errors}
        today = italian_today()
        if day > today:
            return 422, {"title": "test date in the future", "status": 422, "requirement": "ORD-3.1a",
                         "errors": [{"field": "data_esecuzione", "message": "is in the future"}]}
        contatti = body.get("contatti") or {}
        minor = age_on(birth_date(cf, today), day) < 18
        mobile = contatti.get("cellulare_genitore") if minor else None
        mobile = mobile or contatti.get("cellulare")
        rid = str(uuid.uuid4())
        with self.lock:
            self.results[rid] = {"id": rid, "region": lab.split("-", 1)[1], "body": body, "stato": "accettato",
                                 "sms": mobile, "email": contatti.get("email"), "key": "vendor-" + rid}
        threading.Thread(target=self.deliver, args=(rid,), daemon=True).start()
        return 202, {"id": rid, "stato": "accettato"}

    # -- delivery -----------------------------------------------------------
    def call(self, url, body, user, key):
        req = urllib.request.Request(url, data=body, method="POST")
        req.add_header("Content-Type", "application/json")
        token = base64.b64encode(f"{user}:{user}-secret".encode()).decode()
        req.add_header("Authorization", "Basic " + token)
        req.add_header("Idempotency-Key", key if "new-key" not in self.defects else str(uuid.uuid4()))
        try:
            with urllib.request.urlopen(req, timeout=10) as res:
                return res.status, json.loads(res.read() or b"null"), None
        except urllib.error.HTTPError as e:
            after = e.headers.get("Retry-After")
            return e.code, None, float(after) if after else None
        except OSError:
            return 0, None, None

    def until_done(self, url, body, user, key):
        """Retries transient failures with backoff, honouring Retry-After; returns (status, answer)."""
        wait = 0.2
        while True:
            status, answer, after = self.call(url, body, user, key)
            transient = status == 0 or status >= 500 or status in (408, 425, 429)
            if not transient or "no-retry" in self.defects:
                return status, answer
            time.sleep(max(wait, after or 0))
            wait = min(wait * 2, 10)

    def deliver(self, rid):
        r = self.results[rid]
        b = r["body"]
        payload = {k: b[k] for k in ("codice_fiscale", "esito", "tipo_test", "data_esecuzione", "struttura")}
        if "contacts-to-ts" in self.defects:
            payload["contatti"] = {"cellulare": r["sms"], "email": r["email"]}
        status, answer = self.until_done(self.args.sistema_ts + "/ts/v1/test-results",
                                         json.dumps(payload).encode(), "sar-" + r["region"], r["key"])
        if status != 201:
            r["stato"], r["errore"] = "errore", f"Sistema TS answered {status}"
            return
        r["cun"], r["stato"] = answer["cun"], "cun_ricevuto"
        when = datetime.date.fromisoformat(b["data_esecuzione"]).strftime("%d/%m/%y")
        text = (f"Il codice del tuo test Covid-19 del {when} è {answer['cun']}. In caso di esito positivo, "
                "se ha installato l'app Immuni può contattare il numero 800912491")
        if "cf-in-sms" in self.defects:
            text = b["codice_fiscale"] + " " + text
        if r["sms"]:
            to = r["sms"]
            if "crossed-sms" in self.defects:
                with self.lock:
                    to, self.last_number = self.last_number or to, to
            sms = json.dumps({"from": "sistema Ts", "to": to, "text": text}).encode()
            self.until_done(self.args.sms_gateway + "/sms/v1/messages", sms, "sar", r["key"] + "-sms")
        if r["email"]:
            msg = EmailMessage()
            msg["From"], msg["To"] = f"cun@sar-{r['region']}.test", r["email"]
            msg["Subject"] = f"Codice CUN del tuo test Covid-19 del {when}"
            msg["Message-ID"] = f"<{rid}@vendor-sar.test>"
            msg.set_content(text)
            host, port = self.args.smtp.rsplit(":", 1)
            for _ in range(50):
                try:
                    with smtplib.SMTP(host, int(port), timeout=10) as s:
                        s.send_message(msg)
                    break
                except (OSError, smtplib.SMTPException):
                    time.sleep(0.5)
        r["stato"] = "notificato"


def handler_for(sar):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def lab(self):
            auth = self.headers.get("Authorization", "")
            try:
                user, password = base64.b64decode(auth.split(" ", 1)[1]).decode().split(":", 1)
            except (IndexError, ValueError):
                return None
            ok = re.fullmatch(r"lab-\d{3}", user) and password == user + "-secret"
            return user if ok else None

        def answer(self, status, body):
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/problem+json" if status >= 400 else "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length)
            lab = self.lab()
            if not lab:
                return self.answer(401, {"title": "a lab account is needed", "status": 401})
            if self.path != "/sar/v1/esiti":
                return self.answer(404, {"title": "no such route", "status": 404})
            try:
                body = json.loads(raw)
            except ValueError:
                return self.answer(400, {"title": "not JSON", "status": 400, "errors": [{"field": "", "message": "not JSON"}]})
            self.answer(*sar.accept(lab, body))

        def do_GET(self):
            lab = self.lab()
            m = re.fullmatch(r"/sar/v1/esiti/([0-9a-f-]+)", self.path)
            r = sar.results.get(m.group(1)) if m and lab else None
            if not r or r["region"] != lab.split("-", 1)[1]:
                return self.answer(404, {"title": "no such result", "status": 404})
            view = {"id": r["id"], "stato": r["stato"]}
            for k in ("cun", "errore"):
                if k in r:
                    view[k] = r[k]
            self.answer(200, view)

    return Handler


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--sistema-ts", required=True)
    p.add_argument("--sms-gateway", required=True)
    p.add_argument("--smtp", required=True)
    p.add_argument("--defect", action="append", choices=sorted(DEFECTS))
    args = p.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", args.port), handler_for(Sar(args)))
    print(f"listening on http://127.0.0.1:{server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
