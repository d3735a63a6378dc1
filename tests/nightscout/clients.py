"""Documents as the real Nightscout clients build them, from their source code. Each field
names where it comes from; the tests build the uploads and requests from these, never from
the server's own code.

Sources (read at these revisions of the public repositories):
- xDrip+ (NightscoutFoundation/xDrip, c2a0ba1a8): app/src/main/java/com/eveningoutpost/
  dexdrip/utilitymodels/NightscoutUploader.java (`populateV1APIBGEntry`,
  `populateV1APIMeterReadingEntry`, `populateV1APICalibrationEntry`,
  `populateV1APITreatmentEntry`, `postDeviceStatus`, the `NightscoutService` interface) and
  cgm/nsfollow/NightscoutFollow.java (the follower's `Nightscout` interface).
- Juggluco (j-kaltes/Juggluco, 4e2a5f2): Common/src/main/cpp/net/watchserver/uploader.cpp
  (`mkuploaditem`, `makeuploadsecret`), datestring.hpp (`Tdatestring`), NightPost.java.
- xDrip4iOS (JohanDegraeve/xdripswift, 69eb8833): xDrip/Managers/Nightscout/
  Endpoint+Nightscout.swift (`getEndpointForLatestNSEntries`), NightscoutFollowManager.swift.
- nightscout-librelink-up (timoschlueter/nightscout-librelink-up, f68450d):
  src/nightscout/apiv1.ts (`uploadEntries`, `lastEntry`), README.md (NIGHTSCOUT_API_TOKEN).
- py-nightscout 1.3.3 (PyPI, the library Home Assistant's nightscout integration uses):
  py_nightscout/api.py, models.py.
- The server side they talk to: nightscout/cgm-remote-monitor (7e0e77f88) lib/api/,
  lib/authorization/, lib/server/entries.js, lib/server/query.js.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

FIVE_MINUTES = timedelta(minutes=5)


def sha1(secret: str) -> str:
    """xDrip+ `Hashing.sha1().hashBytes(secret.getBytes(UTF_8)).toString()`, Juggluco
    `sha1encode`, xDrip4iOS `apiKey.sha1()`, the LibreLinkUp README's `sha1sum`."""
    return hashlib.sha1(secret.encode(), usedforsecurity=False).hexdigest()


def java_date_string(at: datetime) -> str:
    """xDrip+'s SimpleDateFormat("yyyy-MM-dd'T'HH:mm:ss.SSSZ"): offset written +0800."""
    base = at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}"
    offset = at.strftime("%z")  # +0800
    return base + offset


def juggluco_date_string(at: datetime) -> str:
    """Juggluco's Tdatestring: "%d-%02d-%02dT%02d:%02d:%02d.000%+03d:%02d" -> +08:00."""
    zone = at.strftime("%z")
    return at.strftime("%Y-%m-%dT%H:%M:%S.000") + f"{zone[:3]}:{zone[3:]}"


def xdrip_sgv(at: datetime, mg_dl: int, *, previous: int | None = None) -> dict[str, object]:
    """NightscoutUploader.populateV1APIBGEntry; `at` carries the phone's zone."""
    delta = 0.0 if previous is None else float(mg_dl - previous)
    return {
        "device": "xDrip-DexcomG5",  # "xDrip-" + dex_collection_method (getDeviceString)
        "date": int(at.timestamp() * 1000),  # record.timestamp, ms
        "dateString": java_date_string(at),  # format.format(record.timestamp)
        "sgv": mg_dl,  # (int) record.calculated_value
        "delta": round(delta, 3),  # BigDecimal(currentSlope() * 5 * 60 * 1000), 3 places
        "direction": "Flat",  # record.slopeName()
        "type": "sgv",
        "filtered": mg_dl * 1000.0,  # record.ageAdjustedFiltered() * 1000
        "unfiltered": mg_dl * 1000.0,  # record.usedRaw() * 1000
        "rssi": 100,  # constant in xDrip+
        "noise": 1,  # record.noiseValue()
        "sysTime": java_date_string(at),  # format.format(record.timestamp)
    }


def xdrip_mbg(at: datetime, mg_dl: float) -> dict[str, object]:
    """NightscoutUploader.populateV1APIMeterReadingEntry(BloodTest)."""
    return {
        "device": "xDrip-DexcomG5",  # record.source (for a BloodTest entered in xDrip+)
        "type": "mbg",
        "date": int(at.timestamp() * 1000),  # record.timestamp
        "dateString": java_date_string(at),
        "mbg": mg_dl,  # record.mgdl
        "sysTime": java_date_string(at),
    }


def xdrip_cal(at: datetime, slope: float, intercept: float) -> dict[str, object]:
    """NightscoutUploader.populateV1APICalibrationEntry (the non-"first" branch)."""
    return {
        "device": "xDrip-DexcomG5",  # "xDrip-" + dex_collection_method
        "type": "cal",
        "date": int(at.timestamp() * 1000),
        "dateString": java_date_string(at),
        "slope": slope,  # 1000 / record.slope
        "intercept": intercept,  # (record.intercept * -1000) / record.slope
        "scale": 1,
        "sysTime": java_date_string(at),
    }


def juggluco_sgv(at: datetime, mg_dl: int, sensor: str = "3MH0041XY7P") -> dict[str, object]:
    """uploader.cpp mkuploaditem: {"type","device","dateString","date","sgv","delta",
    "direction","noise","filtered","unfiltered","rssi"}; device is the sensor's name."""
    return {
        "type": "sgv",
        "device": sensor,
        "dateString": juggluco_date_string(at),
        "date": int(at.timestamp()) * 1000,  # tim*1000LL: whole seconds
        "sgv": mg_dl,
        "delta": 0.0,  # getdelta(change), "%.3f"
        "direction": "Flat",  # getdeltaname(change)
        "noise": 1,
        "filtered": mg_dl * 1000,  # mgdL*1000
        "unfiltered": mg_dl * 1000,
        "rssi": 100,
    }


def librelinkup_sgv(at: datetime, mg_dl: int) -> dict[str, object]:
    """apiv1.ts uploadEntries: type, sgv, direction, device, date, dateString (toISOString)."""
    return {
        "type": "sgv",
        "sgv": mg_dl,  # ValueInMgPerDl
        "direction": "Flat",  # mapTrendArrow(TrendArrow)
        "device": "nightscout-librelink-up",  # NIGHTSCOUT_DEVICE_NAME default (config.ts)
        "date": int(at.timestamp() * 1000),  # e.date.getTime()
        "dateString": at.astimezone().strftime("%Y-%m-%dT%H:%M:%S.000Z")
        if at.utcoffset() == timedelta(0)
        else at.isoformat(),
    }


def xdrip_treatment(at: datetime, uuid: str, carbs: float, insulin: float) -> dict[str, object]:
    """populateV1APITreatmentEntry, sent by PUT with "_id" = uuid_to_id(uuid) (postTreatments:
    uuid without dashes, first 24 characters)."""
    return {
        "timestamp": int(at.timestamp() * 1000),  # treatment.timestamp
        "eventType": "<none>",  # xDrip+'s default treatment type
        "enteredBy": "xdrip",
        "notes": "Lunch",
        "uuid": uuid,
        "carbs": carbs,
        "insulin": insulin,
        "created_at": at.astimezone().strftime("%Y-%m-%dT%H:%M:%S.000Z")
        if at.utcoffset() == timedelta(0)
        else at.isoformat(),  # treatment.created_at (ISO)
        "sysTime": java_date_string(at),
        "_id": uuid.replace("-", "")[:24],  # uuid_to_id
    }


def xdrip_devicestatus(battery: int) -> dict[str, object]:
    """postDeviceStatus for the phone (NightscoutBatteryDevice.PHONE): "device" is
    getDeviceName() = Build.MANUFACTURER + " " + Build.MODEL, "uploader" is
    getUploaderJson() = {"battery": level, "type": name()}."""
    return {"device": "Google Pixel 7", "uploader": {"battery": battery, "type": "PHONE"}}
