# स्थिति जानें।

status-prompt = अपनी संदर्भ संख्या लिखें, जैसे C-7K3Q-9XM4-R।
status-typo = इस संदर्भ संख्या में टाइपिंग की गलती है: कोई एक अक्षर गलत है या दो अक्षर आपस में बदल गए हैं। कृपया जांच लें।
status-malformed = यह संदर्भ संख्या नहीं है। संदर्भ संख्या C-7K3Q-9XM4-R जैसी होती है।
status-not-found = इस संदर्भ संख्या की कोई रिपोर्ट आपके नाम पर नहीं मिली।
status-view =
    { $reference } ({ $kind })
    स्थिति: { $status }
    थाना: { $station }
    पिछला बदलाव: { $date }
status-fir = एफआईआर संख्या: { $fir }
status-history =
    अब तक:
    { $lines }
status-history-line = { $date }: { $status }
status-submitted = दर्ज हुई
status-acknowledged = थाने को मिल गई
status-under_inquiry = जांच जारी है
status-fir_registered = एफआईआर दर्ज हुई
status-registered = दर्ज हुई
status-found = मिल गई
status-deposited = थाने में जमा
status-returned = लौटा दी गई
status-closed = बंद की गई
status-other = बदली गई
