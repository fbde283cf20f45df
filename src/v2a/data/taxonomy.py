"""Labels for the real SFX corpus: a two-level `category/subtype` taxonomy mapped from file and folder names.

A path is cut into lower-case word tokens (``Footstep_Rock_Running.ogg`` -> ``footstep rock running``),
packaging words (``usr``, ``share``, ``sounds``, ...) are dropped, and an ordered table of regular
expressions over the remaining text picks the label: the first rule that matches wins, so specific rules
(``footstep/gravel``) come before general ones (``footstep/generic``). Rules may be limited to packages
whose names are only meaningful there (Doom lump names, unit voice lines of strategy games).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Category -> kind of sound (what a consumer filters on: effects, ambience beds, speech, music, UI).
KINDS = {"ambience": "ambience", "weather": "ambience", "speech": "speech", "music": "music", "ui": "ui"}

# Packaging and engine words that say nothing about the sound.
_STOP = frozenset(
    [
        "usr",
        "share",
        "lib",
        "games",
        "game",
        "data",
        "sounds",
        "sound",
        "sfx",
        "audio",
        "snd",
        "wav",
        "ogg",
        "oga",
        "mp",
        "wz",
        "pk",
        "pak",
        "zip",
        "base",
        "baseoa",
        "public",
        "mods",
        "mod",
        "default",
        "mtg",
        "minetest",
        "techs",
        "megapack",
        "commondata",
        "core",
        "stereo",
        "mono",
        "samples",
        "sample",
        "resources",
        "assets",
        "examples",
        "misc",
        "other",
        "extra",
        "new",
        "old",
        "lo",
        "hi",
        "src",
        "dist",
        "main",
        "common",
        "generic",
    ]
)
# Package-specific words that name menus or game mechanics rather than the sound.
_PACKAGE_STOP = {
    "0ad-data": frozenset(
        ["interface", "select", "sel", "building", "complete", "resource", "actor", "attack"]
    ),
    "flightgear-data-base": frozenset(["aircraft", "instruments"]),
    "tuxpaint-stamps-default": frozenset(["stamps", "seasonal", "household", "hobbies"]),
}
_STEP = (
    r"(foot ?steps?|foorstep|footfall|steps?|singlesteps|walk\w*|run|running|fs|hstep|mstep|concstep|boot)"
)
_HIT = r"(hit|hits|impact|imp|thud|thump|knock|bang|bump|collide|collision|clank|clang|dug|dig|break|breaks)"


@dataclass(frozen=True)
class Rule:
    """One line of the label table.

    Attributes:
        label: ``category/subtype`` given to paths the pattern finds.
        pattern: regular expression searched in the space-joined path tokens.
        packages: packages the rule applies to (empty: all).
    """

    label: str
    pattern: re.Pattern[str]
    packages: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Labelled:
    """What the taxonomy says about one path."""

    label: str
    kind: str
    tags: tuple[str, ...]


def _r(label: str, pattern: str, *packages: str) -> Rule:
    return Rule(label, re.compile(pattern), frozenset(packages))


def _both(a: str, b: str) -> str:
    """A pattern that needs both word groups somewhere in the text, in any order."""
    return rf"(?=.*\b{a}\b)(?=.*\b{b}\b)"


_MATERIAL_STEPS = [
    ("grass", r"(grass|leaves|lawn)"),
    ("gravel", r"(gravel|pebbles?)"),
    ("dirt", r"(dirt|mud|earth|soil)"),
    ("sand", r"(sand|desert)"),
    ("snow", r"(snow|ice)"),
    ("wood", r"(wood|wooden|plank|floorboard)"),
    ("metal", r"(metal|steel|iron|clank|mech)"),
    ("stone", r"(stone|rock|concrete|concstep|tile|marble|cobble|glass|brick)"),
    ("water", r"(water|swim\w*|splash|puddle|swimstep)"),
]

RULES: tuple[Rule, ...] = (
    # --- Doom (freedoom) DMX lump names: one opaque token each ---
    _r("weapon/gun", r"\bds(pistol|firsht)\b", "freedoom"),
    _r("weapon/shotgun", r"\bds(shotgn|dshtgn|dbopn|dbload|dbcls)\b", "freedoom"),
    _r("weapon/machinegun", r"\bdschgun\b", "freedoom"),
    _r("weapon/laser", r"\bds(plasma|bfg|rifle)\b", "freedoom"),
    _r("weapon/rocket", r"\bds(rlaunc|skeatk)\b", "freedoom"),
    _r("explosion/blast", r"\bds(barexp|rxplod|firxpl)\b", "freedoom"),
    _r("door/open", r"\bds(doropn|bdopn)\b", "freedoom"),
    _r("door/close", r"\bds(dorcls|bdcls)\b", "freedoom"),
    _r("machine/lift", r"\bds(pstart|pstop|stnmov)\b", "freedoom"),
    _r("ui/switch", r"\bds(swtchn|swtchx)\b", "freedoom"),
    _r("tool/chainsaw", r"\bdssaw\w*\b", "freedoom"),
    _r("impact/flesh", r"\bds(punch|slop|claw)\b", "freedoom"),
    _r("vocal/pain", r"\bds(oof|noway|plpain|popain|dmpain|pepain)\b", "freedoom"),
    _r(
        "vocal/death",
        r"\bds(pldeth|pdiehi|podth\w*|bgdth\w*|sgtdth|cacdth|brsdth|cybdth|spidth|kntdth|skedth)\b",
        "freedoom",
    ),
    _r("magic/teleport", r"\bdstelept\b", "freedoom"),
    _r("game/pickup", r"\bds(itemup|wpnup|getpow)\b", "freedoom"),
    _r(
        "creature/monster",
        r"\bds(\w*sit\w*|\w*act|bgact|dmact|posact|sgtatk|manatk|vilatk|skeswg|bspwlk|hoof|metal)\b",
        "freedoom",
    ),
    # --- desktop sound themes: "window", "device" are UI events there ---
    _r(
        "ui/notification",
        r"\b(window|desktop|device|dialog|service|message|im|sys)\b",
        "oxygen-sounds",
        "deepin-sound-theme",
        "gnome-audio",
        "sound-theme-freedesktop",
    ),
    _r("speech/voice", r"\bchannel\b", "sound-theme-freedesktop"),
    # --- tilesets, callouts and other package-specific conventions ---
    _r("ambience/night", r"\btilesets\b.*\bnight\b", "megaglest-data"),
    _r("ambience/nature", r"\btilesets\b.*\bday\b", "megaglest-data"),
    _r("water/generic", r"\bwater sounds\b", "megaglest-data"),
    _r(
        "weapon/sword",
        _both(
            (
                r"(guard|swordman|stickfighter|axe|warrior|berserker|pikeman|spearman|"
                r"worker|hero|knight|defender|horseman)"
            ),
            "attack",
        ),
        "megaglest-data",
    ),
    _r(
        "magic/spell",
        _both(
            r"(archmage|battlemage|initiate|summoner|daemon|ab|ghost|shaman|priest|thunderbird|mage|wizard)",
            "attack",
        ),
        "megaglest-data",
    ),
    _r("weapon/bow", _both(r"(defense tower|archer|tower)", "attack"), "megaglest-data"),
    _r("speech/voice", r"\b(mk viii|tcas|female|checklist)\b", "flightgear-data-base"),
    _r("vehicle/tires", r"\bsqueal\b", "flightgear-data-base"),
    _r("speech/voice", r"\b(filled|outline|alphabets)\b", "tuxpaint-stamps-default"),
    _r("animal/duck", r"\b(drake|gander)\b", "tuxpaint-stamps-default"),
    _r("weapon/laser", r"\blightning\b", "openarena-data"),
    _r("music/drums", r"\broll\b", "libreoffice-common"),
    _r("music/piano", r"^\d[a-g]$", "hedgewars-data"),
    _r("ambience/city", r"\bamb (port|trade|market|temple|theater|barracks|civil|dock)\b", "0ad-data"),
    _r("ambience/farm", r"\bamb (farm|field|stable|corral)\b", "0ad-data"),
    _r("animal/dog", r"\bkennel\b", "0ad-data"),
    # --- voice lines and acted phrases of strategy and party games ---
    _r(
        "vocal/death",
        r"\b(die|death|dying|dies|mort)\b",
        "megaglest-data",
        "0ad-data",
        "wesnoth-1.16-data",
        "heroes-sound-effects",
    ),
    _r("speech/voice", r"\b(ack|select|sel|voice|voices|civ|summon|heal)\b", "megaglest-data"),
    _r("speech/voice", r"\bvoice\b", "0ad-data"),
    _r(
        "speech/voice",
        r"\b(memressp|cmndrvoc|tutorial|tut|vtoltalk|taunts?|countdown|missmesg|proxmessages|nexus|coltive"
        r"|trnsppil|sequenceaudio|multi|prox|pcv|lz|lndgzne|nmedeted|research)\b",
        "warzone2100-data",
    ),
    _r("speech/voice", r"\b(voice|voices|announcer)\b", "redeclipse-data", "openarena-data"),
    _r("vocal/laugh", r"\b(laugh\w*|haha\w*|hehe\w*|giggle|evil)\b", "hedgewars-data"),
    _r("vocal/pain", r"\b(ooff|ouch|ow|ugh|uh|oof|nooo|ohdear|drat|bugger)\b", "hedgewars-data"),
    _r("speech/voice", r"\bvoices\b", "hedgewars-data"),
    _r("speech/voice", r"\b(announcer|goodidea|letsgo|ohno|excuseme|areyousure|youcannot|tuxok)\b"),
    _r(
        "vocal/pain",
        _both(r"(human|elf|dwarf|orc|goblin|troll|ogre|naga|merman|mermen|drake|wose|saurian)", r"(hit)"),
    ),
    _r(
        "creature/monster",
        _both(r"(skeleton|zombie|ghost|lich|yeti|gryphon|wolf|bat|spider|wose)", r"(hit|die)"),
        "wesnoth-1.16-data",
    ),
    # --- music: game soundtracks and jingles, instruments ---
    _r(
        "music/jingle",
        (
            r"\b(jingle|fanfare|leveldone|level done|victory|win|winfinal|"
            r"wonrace\w*|lostrace\w*|lose|gameover|good year|bad year|finlevel|"
            r"race win theme)\b"
        ),
    ),
    _r("music/strings", r"\b(violin|viola|cello|fiddle|harp|string|strings|contrabass|pluck)\b"),
    _r("music/guitar", r"\b(guitar|banjo|ukulele|lute|mandolin|sitar)\b"),
    _r("music/piano", r"\b(piano|rhodes|harpsichord)\b"),
    _r(
        "music/drums",
        (
            r"\b(drum|drums|drumroll|drumkit|tomtom|cymbal|conga|congas|kongas|"
            r"bongo|bongos|tambourine|timpani|taiko)\b"
        ),
    ),
    _r("music/brass", r"\b(trumpet|trombone|tuba|french horn|bugle|brass|saxophone|sax)\b"),
    _r("music/pipe", r"\b(flute|recorder|panpipes?|piccolo|ocarina|bagpipes?)\b"),
    _r("music/reed", r"\b(clarinet|oboe|bassoon|harmonica|accordion)\b"),
    _r(
        "music/mallet",
        r"\b(xylophone|xylo|marimba\w*|glockenspiel|vibraphone|celesta|musicbox|music box|mallet)\b",
    ),
    _r("music/organ", r"\b(organ|harmonium)\b"),
    _r("music/soundtrack", r"\b(music|ingame|soundtrack|theme|menu music|intro music|track)\b"),
    _r("ui/ringtone", r"\b(ringtones?|phone ring|phone incoming call|phone outgoing calling|phone)\b"),
    # --- footsteps by surface ---
    *(_r(f"footstep/{name}", _both(_STEP, surface)) for name, surface in _MATERIAL_STEPS),
    _r(
        "footstep/generic",
        r"\b(foot ?steps?|foorstep|footfall|singlesteps|hstep|mstep|boot|steps|step|fs|swimstep|walking)\b",
    ),
    # --- movement, slides, whooshes ---
    _r("movement/slide", r"\b(slide|sliding|skate|skating)\b"),
    _r("vehicle/tires", r"\b(skid|screech|tires?|tyres?|brake|brakes|wheels touching ground)\b"),
    # --- glass, doors, containers ---
    _r(
        "glass/break",
        _both(
            r"(glass|window|bottle|vase|mirror|crystal)",
            r"(break|breaks|broke|broken|shatter\w*|smash\w*|crash)",
        ),
    ),
    _r("door/creak", _both(r"(doors?|gate|hinge)", r"(creak\w*|squeak\w*)")),
    _r(
        "door/open",
        _both(
            r"(doors?|dr|gate|stonegate|chest|drawer|window|compartment|hatch|lid|cabinet)",
            r"(open|opens|opening|opened|start)",
        ),
    ),
    _r(
        "door/close",
        _both(
            r"(doors?|dr|gate|stonegate|chest|drawer|window|compartment|hatch|lid|cabinet)",
            r"(close|closes|closing|closed|shut|slam|end)",
        ),
    ),
    _r("door/generic", r"\b(doors?|gate|doorbell)\b"),
    _r("glass/clink", r"\b(glasses|clink|bottle|dishes|glass|cup|cups)\b"),
    # --- weather and fire before the generic water/impact rules ---
    _r("weather/thunder", r"\b(thunder\w*|lightning|storm|strom)\b"),
    _r("weather/rain", r"\b(rain|raindrops?|drizzle|rain windshield)\b"),
    _r(
        "weather/wind",
        r"\b(wind\d*|windleaves|gust|breeze|blizzard|snowstorm|howling wind|vortex|blade vortex)\b",
    ),
    _r("fire/lava", r"\b(lava|magma)\b"),
    _r("fire/extinguish", r"\b(extinguish\w*|sizzle|cool lava|douse|hiss)\b"),
    _r("fire/whoosh", r"\b(fireball|flamer|flamethrower|firebolt|ignite|blowtorch|firepunch|flame)\b"),
    _r("fire/burning", r"\b(fire|fires|burn\w*|campfire|torch|fireplace|crackl\w*|furnace|singe|blaze)\b"),
    # --- explosions ---
    _r("explosion/fireworks", r"\b(fireworks?|firecracker|newyears|rocket launch party)\b"),
    _r(
        "explosion/debris",
        (
            r"\b(debris|rubble|collapse|crumble|tech building fall|building fall|"
            r"destruction|tree falling|crashing tree|falling tree)\b"
        ),
    ),
    _r(
        "explosion/blast",
        (
            r"\b(explosions?|explode\w*|explo\w*|boom|blast|detonat\w*|tnt|bomb|"
            r"nuke|kaboom|grenade|proxmine|mortar)\b"
        ),
    ),
    # --- weapons ---
    _r("impact/metal", _both(r"(metal|steel|iron|anvil|shield metal|tin|armor|armour)", _HIT)),
    _r("impact/wood", _both(r"(wood|wooden|tree|log|plank|crate|box|choppy)", _HIT)),
    _r("impact/stone", _both(r"(stone|rock|cracky|brick|concrete|boulder)", _HIT)),
    _r("impact/dirt", _both(r"(dirt|mud|earth|sand|gravel|crumbly|ground)", _HIT)),
    _r("magic/spell", r"\bmagic\b"),
    _r("weapon/reload", r"\b(reload\w*|cock|clip|magazine|ammo|noammo)\b"),
    _r("weapon/shotgun", r"\b(shotgun|shotgn)\b"),
    _r("weapon/machinegun", r"\b(machinegun|machgf|mgbar|chaingun|minigun|gatling|vulcan\w*|smg|mg)\b"),
    _r(
        "weapon/cannon", r"\b(cannon|artillery|catapult|ballist\w*|onager|siege\w*|howitzer|trebuchet|flak)\b"
    ),
    _r("weapon/rocket", r"\b(rocket|rocklx|missile|launcher|rlaunc|torpedo)\b"),
    _r("weapon/laser", r"\b(laser|plasma|beam|phaser|zapper|zap|blaster|railgun|bzzt|pzap|ray|gun beam)\b"),
    _r(
        "weapon/gun",
        r"\b(gun|guns|pistol|rifle|musket|revolver|thunderstick|shot|shoot\w*|gunshot|firearm|sniper)\b",
    ),
    _r("weapon/bow", r"\b(bow|arrow|arrows|arrowfly|crossbow|archer|quiver|sling|jav|javelin)\b"),
    _r(
        "weapon/sword",
        (
            r"\b(sword\w*|blade|slash|sabre|saber|stab|knife|dagger|swordhit|mace|"
            r"flail|club|cudgel|staff|spear|pike|halberd|melee|axe attack|scimitar|"
            r"katana)\b"
        ),
    ),
    _r("weapon/whoosh", r"\b(swing|swish|whoosh|swoosh|whiff|woosh|miss|missed|throw|thrown|swipe)\b"),
    # --- magic and sci-fi ---
    _r("magic/teleport", r"\b(teleport\w*|telein|teleout|warp|portal|tardis|respawn|spawn)\b"),
    _r(
        "magic/spell",
        (
            r"\b(magic|spell|heal|healing|holy|arcane|faeriefire|faerie|enchant\w*|"
            r"curse|summon\w*|mana|shield|forcefield|impulse)\b"
        ),
    ),
    # --- animals and creatures ---
    _r("animal/dog", r"\b(dog|dogs|bark\w*|puppy|hound|woof)\b"),
    _r("animal/bigcat", r"\b(lion|tiger|leopard|panther|jaguar|cheetah|roar\w*)\b"),
    _r("animal/cat", r"\b(cat|cats|meow|kitten|purr)\b"),
    _r("animal/chicken", r"\b(chicken|rooster|hen|chick|cluck|cock a doodle)\b"),
    _r("animal/duck", r"\b(duck|ducks|quack|goose|geese|rubberduck)\b"),
    _r(
        "animal/bird",
        (
            r"\b(birds?|crow|raven|cuckoo|owl|eagle|seagull|gull|parrot|pigeon|dove|"
            r"swan|sparrow|tweet|chirp\w*|crane|peacock|penguin|birdy\w*|woodpecker|"
            r"flamingo|ostrich|vulture|tucan|toucan|quetzal|lark|heron|blackbird|"
            r"nandou|turkey|thunderbird)\b"
        ),
    ),
    _r(
        "animal/horse",
        r"\b(horse|horses|neigh|whinny|hoof|hooves|gallop|canter|trot|pony|donkey|mule|zebra|equines)\b",
    ),
    _r("animal/cow", r"\b(cow|cows|moo|bull|cattle|ox|calf|buffalo|bison)\b"),
    _r("animal/sheep", r"\b(sheep|lamb|baa|goat|goats)\b"),
    _r("animal/pig", r"\b(pig|pigs|boar|hog|oink|tusker)\b"),
    _r(
        "animal/insect",
        (
            r"\b(insects?|bee|bees|wasp|mosquito|fly|flies|crickets?|cicada|cycadas|"
            r"grasshopper|bumblebee|beewater|hornet)\b"
        ),
    ),
    _r("animal/frog", r"\b(frog|frogs|toad|croak)\b"),
    _r("animal/wolf", r"\b(wolf|wolves|howl\w*|coyote|jackal)\b"),
    _r("animal/elephant", r"\b(elephants?|mammoth)\b"),
    _r("animal/monkey", r"\b(monkeys?|ape|gorilla|chimp\w*|baboon)\b"),
    _r("animal/bear", r"\b(bear|bears|polar bear)\b"),
    _r("animal/snake", r"\b(snake|snakes|rattlesnake|cobra|serpent)\b"),
    _r("animal/camel", r"\b(camel|camels|llama)\b"),
    _r("animal/deer", r"\b(stag|deer|elk|moose|reindeer)\b"),
    _r("animal/fish", r"\b(fish|fishes|whale|dolphin|seal)\b"),
    _r("animal/rodent", r"\b(mouse|mice|rat|rats|rabbit|squirrel|hamster|beaver|ferret|badger)\b"),
    _r(
        "creature/monster",
        (
            r"\b(monster|creature|daemon|demon|dragon|troll|ogre|orc|goblin|zombie|"
            r"ghost|skeleton|golem|behemoth|yeti|lich|mummy|wose|drake|gryphon|"
            r"beast|growl|snarl|alien|spider)\b"
        ),
    ),
    _r("animal/bat", r"\b(bat|bats|bat flapping)\b"),
    _r("animal/generic", r"\b(animals?|fauna|critters?|farm animal)\b"),
    # --- human non-speech vocal sounds and crowds ---
    _r("crowd/applause", r"\b(applause|clap\w*|apert\w*)\b"),
    _r("crowd/cheer", r"\b(cheer\w*|hooray|yay|yipee|woohoo|ooh|oooh|aah|oooh sound)\b"),
    _r(
        "crowd/chatter",
        r"\b(crowd|chatter|murmur|people|tavern|taverns|inn|biginn|market|babble|foule|audience|meal)\b",
    ),
    _r("vocal/laugh", r"\b(laugh\w*|haha\w*|hehe\w*|giggle|chuckle)\b"),
    _r("vocal/scream", r"\b(scream\w*|shriek\w*|yell\w*|wail\w*|aaah)\b"),
    _r("vocal/death", r"\b(death|die|dies|dying|pldeth|deth)\b"),
    _r("vocal/pain", r"\b(pain|hurt|ouch|oof|ooff|grunt|groan|moan|injur\w*|damage heavy|plpain|ugh)\b"),
    _r("vocal/cough", r"\b(cough\w*|sneeze|snore|yawn|sleep)\b"),
    _r("vocal/kiss", r"\b(kiss|smooch)\b"),
    _r("vocal/whistle", r"\b(whistle|whistling|yoohoo)\b"),
    # --- clocks and alarms before vehicles ("alarm_warship", "idle unit") ---
    _r("machine/clock", r"\b(clock|clocks|tick|tock|ticking|timer|watch)\b"),
    _r("ui/alarm", r"\b(alarm\w*|siren|alert|warning|klaxon|attacked|under attack)\b"),
    # --- vehicles and engines ---
    _r("vehicle/horn", r"\b(horn|claxon|klaxon|gear hrn|hooter)\b"),
    _r("engine/helicopter", r"\b(helicopter|heli|rotor\w*|chopper)\b"),
    _r("engine/jet", r"\b(jet|jets|turbine|turbojet|afterburner|turbofan|mach)\b"),
    _r(
        "engine/aircraft",
        r"\b(prop|propeller|plane|cessna|airplane|engine prop|turboprop\w*|p51d\w*|r\d+slow|vtol)\b",
    ),
    _r(
        "engine/train",
        (
            r"\b(train|trains|locomotive|railway|railroad|maglev|monorail|tram|cart|"
            r"carts|level crossing|steam engine)\b"
        ),
    ),
    _r("engine/boat", r"\b(ship|ships|boat|ferry|warship|outboard)\b"),
    _r("engine/truck", r"\b(truck|lorry|bus|tractor|tank|tanks)\b"),
    _r(
        "engine/car",
        r"\b(car|cars|kart|karts|racer|automobile|traffic|distant cars|vehicle|engine large|engine small)\b",
    ),
    _r("engine/generic", r"\b(engines?|idle|revs?|starter\w*|cranking|crank|exhaust\w*|engstart|motor)\b"),
    # --- water ---
    _r("water/splash", r"\b(splash\w*|splosh\w*|splat|plop\w*|sploosh|dive|diving|splashin|splashout)\b"),
    _r("water/drip", r"\b(drip\w*|droplets?|drops?)\b"),
    _r(
        "water/bubbles",
        (
            r"\b(bubbles?|blub\w*|gurgl\w*|underwater|slurp\w*|bubble\w*|"
            r"beerbubble\w*|winebubble\w*|kettle|boil\w*|fizz\w*)\b"
        ),
    ),
    _r("water/waves", r"\b(waves?|surf|sea|ocean|shore|seashore|beach)\b"),
    _r(
        "water/flow",
        r"\b(river|rivers|stream|brook|waterfall\w*|fountain|flow\w*|creek|toilet|flush|pour\w*)\b",
    ),
    _r("water/generic", r"\b(water|watr|liquid|swim\w*|wet)\b"),
    # --- tools, work, machines ---
    _r(
        "game/powerup",
        (
            r"\b(power ?up\w*|upgrade\w*|bonus|invinc\w*|invincible|level ?up|"
            r"secret\w*|life|extra life|lplus|speedup|star)\b"
        ),
    ),
    _r("tool/chainsaw", r"\b(chainsaw|chain saw)\b"),
    _r("tool/scissors", r"\b(scissors|shears|snip)\b"),
    _r("tool/saw", r"\b(saw|saws|sawing|benchsaw|sawmill|circular saw)\b"),
    _r("tool/drill", r"\b(drill\w*|jackhammer|pneumatic|air hammer)\b"),
    _r(
        "tool/hammer",
        (
            r"\b(hammer\w*|smith|smiths|blacksmith|anvil\w*|mallet metal|nail\w*|"
            r"pound\w*|forge|repair|construction|build|building site)\b"
        ),
    ),
    _r("tool/chop", r"\b(chop\w*|axe|woodcut\w*|lumber\w*|logging|cutting|stonecutter|stonecutting)\b"),
    _r(
        "tool/dig",
        r"\b(dig|digging|digger|dug|shovel|spade|mining|miner|pickaxe|pick|crumbly|cracky|quarry)\b",
    ),
    _r(
        "tool/farm",
        (
            r"\b(hoe|scythe|harvest\w*|farming|farm|reap\w*|plough|plow|sow|sowing|"
            r"gather\w*|foraging|fruit|meat|grain)\b"
        ),
    ),
    _r(
        "machine/electric",
        (
            r"\b(electric\w*|electro|spark\w*|sparcle|zap\w*|buzz\w*|forcefield|"
            r"energy|power|avionics|static|radionoise|generator|transformer)\b"
        ),
    ),
    _r("machine/steam", r"\b(steam|vent|pressure|airout|pneumatic)\b"),
    _r("machine/camera", r"\b(camera\w*|shutter\w*|shutterclick|photo|screen capture)\b"),
    _r("machine/typewriter", r"\b(typewriter\w*|typing|keyboard|keyclick)\b"),
    _r("machine/vacuum", r"\b(vacuum\w*|hoover|hairdryer|blender|washing machine)\b"),
    _r("machine/lift", r"\b(lift|elevator|winch|pulley|crane|lever|flaps?|gear|trim)\b"),
    _r(
        "machine/generic",
        (
            r"\b(machine\w*|machinery|mechanical|mech|factory|industrial|mill|pump|"
            r"conveyor|piston|weaver|weaving|loom|jumppad|gyro|fan|motor|servo|"
            r"whine|rattle\w*)\b"
        ),
    ),
    # --- bells, alarms, UI ---
    _r("bell/gong", r"\b(gong)\b"),
    _r(
        "bell/ring",
        r"\b(bells?|chime\w*|kling|ding|dong|typewriterbell|church|handbell|cowbell|sleigh bells)\b",
    ),
    _r(
        "ui/error",
        (
            r"\b(error|errors|negative|critical|fail\w*|wrong|incorrect|invalid|"
            r"denied|locked|nomatch|cant|problems?|lost|buzzer)\b"
        ),
    ),
    _r(
        "ui/click",
        (
            r"\b(click\w*|clicked|clicks|tick|tap|button|toggle\w*|select\w*|"
            r"menu\w*|radclick|radclik|switch|scroll|tink)\b"
        ),
    ),
    _r(
        "ui/beep",
        (
            r"\b(beep\w*|bleep|blip|ping|ting|chink|morse|tone|a\d+|sine|"
            r"test signal|audio test signal|flarm\w*|vario\w*)\b"
        ),
    ),
    _r(
        "ui/notification",
        (
            r"\b(notif\w*|message\w*|msg|mail|email|im|chat|sms|contact|login|"
            r"logout|log in|log out|startup|shutdown|complete\w*|done|success|"
            r"positive|question|information|info|dialog|device|plug|unplug|"
            r"attention|highlight|prompt|trash|desktop|window|finish|insert|sent|"
            r"volume|service|suspend|resume|nudge|auth|added|removed|special|list|"
            r"activate|activated|connect\w*|network)\b"
        ),
    ),
    # --- game events ---
    _r(
        "game/coin",
        r"\b(coins?|money|cash|till|gold|goldspin|argent\w*|collectcrate|collect crate|cash till)\b",
    ),
    _r("game/pickup", r"\b(pick ?up\w*|pkup|item\w*|collect\w*|grab|get|itemuse|health|armour|armor)\b"),
    _r(
        "game/jump", r"\b(jump\w*|bigjump|hop|boing\w*|spring|bounce\w*|phase jump|ropeshot|rope|parachute)\b"
    ),
    _r("game/countdown", r"\b(countdown|count down|ready|go|start race|lmoins|speedown|lowbattery)\b"),
    # --- broad impacts last ---
    _r(
        "impact/flesh",
        (
            r"\b(punch\w*|flesh\w*|gib\w*|slap\w*|squish\w*|meat|body|bodyfall|"
            r"stomp|smack|whack|thwack|fist|claws?|bite|pincers|gibimp)\b"
        ),
    ),
    _r("impact/crash", r"\b(crash\w*|smash\w*|wreck\w*|ecrase\w*|demolish\w*)\b"),
    _r(
        "impact/generic",
        (
            r"\b(hit|hits|impact\w*|thud\w*|thump\w*|knock\w*|bang\w*|bump\w*|"
            r"collide|collision|clank\w*|clang\w*|land\w*|fall\w*|drop|dropped|"
            r"break|breaks|dug|node|debris|pop|rock hit|shell)\b"
        ),
    ),
    # --- ambience beds ---
    _r("ambience/night", r"\b(night|nighttime|evening|voc night)\b"),
    _r(
        "ambience/nature",
        (
            r"\b(forest\w*|jungle|woods|nature\d*|dayscape|day|meadow|countryside|"
            r"temperate|garden|park|outdoor\w*)\b"
        ),
    ),
    _r("ambience/city", r"\b(city|street|urban|town|port|harbou?r|village|amb port)\b"),
    _r("ambience/cave", r"\b(cave|caves|cavern|dungeon|mine shaft)\b"),
    _r(
        "ambience/space", r"\b(space\d*|spaceship\w*|scifi|sci fi|cosmic|secosmic|ufo|reactor|criticalcore)\b"
    ),
    _r(
        "ambience/drone",
        r"\b(drone\w*|machinerydrone\w*|hum\w*|rumble\w*|x ancientsdrone|vapour|outdoorsignal)\b",
    ),
    _r("ambience/generic", r"\b(ambien\w*|ambience|amb|atmo\w*|background|room tone|loop)\b"),
)

_CAMEL = re.compile(r"(?<=[a-z])(?=[A-Z])")
_NON_WORD = re.compile(r"[^a-z0-9]+")
_KNOWN_LABELS = frozenset(rule.label for rule in RULES)


def tokens(path: str, *, package: str = "") -> list[str]:
    """The descriptive word tokens of a path, in order: lower case, camelCase and digits split off.

    Packaging words, the package's own name words and pure numbers are dropped. ``'ab3c'``-like
    tokens keep their letters: ``'mgbar1'`` -> ``'mgbar'``.
    """
    drop = set(_STOP) | set(_NON_WORD.split(package.lower())) | _PACKAGE_STOP.get(package, frozenset())
    words: list[str] = []
    for part in re.split(r"[/\\]", path):
        part = re.sub(r"\.(ogg|oga|wav|flac|mp3|opus|wad|pk3|wz|zip|cat|sf2)$", "", part, flags=re.IGNORECASE)
        for word in _NON_WORD.split(_CAMEL.sub(" ", part).lower()):
            word = word.rstrip("0123456789") if not word.isdigit() else ""
            if len(word) >= 2 and word not in drop:
                words.append(word)
    return words


def label_path(path: str, *, package: str = "") -> Labelled | None:
    """Label a sound by its path inside its package (and container).

    Args:
        path: e.g. ``usr/share/games/minetest/.../default_gravel_footstep.1.ogg``.
        package: the package the file comes from; selects package-specific rules.

    Returns:
        The label, its kind and descriptive tags, or None when no rule matches.
    """
    words = tokens(path, package=package)
    text = " ".join(words)
    for rule in RULES:
        if rule.packages and package not in rule.packages:
            continue
        if rule.pattern.search(text):
            return make_labelled(rule.label, words)
    return None


def make_labelled(label: str, words: list[str] | tuple[str, ...] = ()) -> Labelled:
    """Wrap a label that comes from package context rather than from the rule table."""
    check_label(label)
    tags = tuple(dict.fromkeys(w for w in words if not w.isdigit()))[:12]
    return Labelled(label, kind_of(label), tags)


def kind_of(label: str) -> str:
    """The kind (sfx/ambience/speech/music/ui) of a ``category/subtype`` label."""
    return KINDS.get(label.split("/", 1)[0], "sfx")


def check_label(label: str) -> str:
    """Return ``label`` if it is a well-formed ``category/subtype`` name, else raise ValueError."""
    if not re.fullmatch(r"[a-z]+/[a-z]+", label):
        raise ValueError(f"label {label!r} is not of the form category/subtype (lower-case letters)")
    return label


def known_labels() -> frozenset[str]:
    """Every label the rule table can produce (package context and speech/music handlers add a few)."""
    return _KNOWN_LABELS
